//! {{name}}: a pix-host {{kind}} policy, built against `pix:policy@0.2.0` (wit/policy.wit, where
//! every field is documented). Money is i64 centavos; every call runs in a fresh instance with no
//! filesystem, network, clock or randomness: everything a rule needs is in its input.

wit_bindgen::generate!({ path: "wit", world: "{{world}}" });

use pix::policy::types::*;

struct Policy;

// Not every rule reads every kind of parameter.
#[allow(dead_code)]
fn param_int(params: &[Param], name: &str, default: i64) -> i64 {
    params
        .iter()
        .find_map(|p| match &p.value {
            ParamValue::Int(v) if p.name == name => Some(*v),
            _ => None,
        })
        .unwrap_or(default)
}

#[allow(dead_code)]
fn param_text(params: &[Param], name: &str, default: &str) -> String {
    params
        .iter()
        .find_map(|p| match &p.value {
            ParamValue::Text(v) if p.name == name => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_else(|| default.to_owned())
}
{{rules}}
export!(Policy);
