//! Fixture files (`pix_policy::cases`, what `pix-host policy test` runs): parsing, passing cases,
//! field-level differences, expected fail-safes, and unusable cases.

mod common;

use pix_policy::cases::{self, Difference, FixtureFile, Format, Verdict};
use pix_policy::*;
use serde_json::json;

const FEE_INPUT: &str = r#"
operation = "CASH_OUT"
initiation = "KEY"
purpose = "TRANSFER"
amount = 25000
payerType = "LEGAL"
payeeType = "NATURAL"
accountSegment = "merchant"
intraPsp = false
localTime = { minuteOfDay = 720, weekday = "WEDNESDAY" }
monthCount = 3
monthVolume = 90000
"#;

fn fee_file(cases: &str) -> FixtureFile {
    FixtureFile::parse(cases, Format::Toml).unwrap_or_else(|e| panic!("{e}\n{cases}"))
}

/// A case on the shipped default fee: a legal person's 4th cash-out of the month.
fn case(name: &str, outcome: &str) -> String {
    format!("[[case]]\nname = \"{name}\"\n{outcome}\n[case.input]\n{FEE_INPUT}\n")
}

fn verdicts(file: &FixtureFile) -> Vec<Verdict> {
    let policy = common::load("default-fee.wasm").expect("default fee");
    cases::run(common::engine(), &policy, file).into_iter().map(|r| r.verdict).collect()
}

#[test]
fn matching_decisions_pass_and_wrong_ones_name_the_fields_that_differ() {
    let text = [
        case(
            "tier 1",
            r#"expect = { fee = 150, feeAccount = "@fees_revenue", charge = "ON_TOP", label = "pj-cash-out-tier-1" }"#,
        ),
        case(
            "wrong fee and label",
            r#"expect = { fee = 90, feeAccount = "@fees_revenue", charge = "ON_TOP", label = "pj-flat" }"#,
        ),
    ]
    .concat();
    let mut file = fee_file(&text);
    let got = verdicts(&file);
    assert_eq!(got[0], Verdict::Passed);
    assert_eq!(
        got[1],
        Verdict::Differs(vec![
            Difference { path: "fee".into(), expected: Some(json!(90)), actual: Some(json!(150)) },
            Difference {
                path: "label".into(),
                expected: Some(json!("pj-flat")),
                actual: Some(json!("pj-cash-out-tier-1"))
            },
        ])
    );
    // The same file with the tenant's fee account: the first case now differs in that field only.
    file.params = Some([("fee-account".to_owned(), ParamValue::Text("@tarifas".into()))].into());
    match &verdicts(&file)[0] {
        Verdict::Differs(d) => assert_eq!(d.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["feeAccount"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn expected_failsafes_pass_only_when_the_policy_fails_that_way() {
    // The default fee never fails, and it rejects no input of this shape: a fail-safe case on it
    // reports what it decided instead.
    let file = fee_file(&case("must fail", r#"failsafe = "any""#));
    match &verdicts(&file)[0] {
        Verdict::Decided(actual) => assert_eq!(actual["fee"], 150),
        other => panic!("{other:?}"),
    }
    // A guest that traps: `any` and `trap` pass, another class does not; expecting a decision
    // shows the fail-safe the host would use.
    let panics = common::load("hostile/hostile-panic.wasm").expect("loads: it panics only on one segment");
    let fixture = |outcome: &str| -> FixtureFile {
        let input = serde_json::to_value(trigger_fee()).unwrap();
        let mut file = FixtureFile::default();
        let mut c: cases::Case = serde_json::from_value(json!({"name": "hostile", "input": input})).unwrap();
        match outcome {
            "decision" => c.expect = Some(json!({"fee": 1, "feeAccount": "@x", "charge": "ON_TOP", "label": "x"})),
            class => c.failsafe = Some(class.to_owned()),
        }
        file.cases.push(c);
        file
    };
    let run = |f: &FixtureFile| cases::run(common::engine(), &panics, f).remove(0).verdict;
    assert_eq!(run(&fixture("any")), Verdict::Passed);
    assert_eq!(run(&fixture("trap")), Verdict::Passed);
    assert!(
        matches!(run(&fixture("out_of_fuel")), Verdict::WrongFailure { expected, .. } if expected == "out_of_fuel")
    );
    match run(&fixture("decision")) {
        Verdict::Failed { error, failsafe } => {
            assert!(error.starts_with("trap"), "{error}");
            assert_eq!(failsafe, serde_json::to_value(native::fee(&trigger_fee(), &Params::default())).unwrap());
        }
        other => panic!("{other:?}"),
    }
}

/// The input hostile-panic panics on (guests/hostile-panic).
fn trigger_fee() -> FeeInput {
    FeeInput { account_segment: "hostile".into(), ..fixtures::fee().remove(0).1 }
}

#[test]
fn unusable_cases_and_files_are_reported_not_run() {
    assert!(FixtureFile::parse("", Format::Toml).unwrap_err().contains("no cases"));
    let both = case("both", "expect = { fee = 1 }\nfailsafe = \"any\"");
    assert!(FixtureFile::parse(&both, Format::Toml).unwrap_err().contains("exactly one of `expect` and `failsafe`"));
    let typo = case("typo", "failsafe = \"any\"\nexpected = 1");
    assert!(FixtureFile::parse(&typo, Format::Toml).unwrap_err().contains("unknown field"), "fields are checked");

    let text = [
        case("bad expectation", r#"expect = { fee = "a lot" }"#),
        "[[case]]\nname = \"bad input\"\nfailsafe = \"any\"\ninput = { operation = \"CASH_OUT\" }\n".to_owned(),
        format!(
            "[[case]]\nname = \"not a fee\"\nkind = \"refund-split\"\nfailsafe = \"any\"\n[case.input]\n{FEE_INPUT}"
        ),
        format!("{}accountSegmnt = \"typo\"\n", case("misspelt input field", "failsafe = \"any\"")),
    ]
    .concat();
    let got = verdicts(&fee_file(&text));
    let why: Vec<String> = got
        .iter()
        .map(|v| match v {
            Verdict::Invalid(why) => why.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(why[0].starts_with("expect is not a fee decision"), "{}", why[0]);
    assert!(why[1].starts_with("input is not a fee input") && why[1].contains("missing field"), "{}", why[1]);
    assert_eq!(why[2], "the component does not implement refund-split");
    assert_eq!(why[3], "input has no field `accountSegmnt` (a fee input)");
}

#[test]
fn toml_and_json_round_trip_without_nulls() {
    let input = FraudInput { key_type: None, key_statistics: None, ..fixtures::fraud_triage().remove(0).1 };
    let file = FixtureFile {
        kind: Some(PolicyKind::FraudTriage),
        params: None,
        cases: vec![cases::Case {
            name: "recorded".into(),
            note: Some("decision 7".into()),
            kind: None,
            params: None,
            input: serde_json::to_value(&input).unwrap(),
            expect: Some(json!({"score": 0, "action": "ALLOW", "reasons": []})),
            failsafe: None,
        }],
    };
    for format in [Format::Toml, Format::Json] {
        let text = file.render(format).expect("renders");
        let back = FixtureFile::parse(&text, format).expect("parses back");
        let decoded: FraudInput = serde_json::from_value(back.cases[0].input.clone()).expect("an input");
        assert_eq!(decoded, input, "{format:?}:\n{text}");
        assert_eq!(back.cases[0].expect, file.cases[0].expect);
    }
    assert_eq!(Format::of(std::path::Path::new("a/b.JSON")), Format::Json);
    assert_eq!(Format::of(std::path::Path::new("today.toml")), Format::Toml);
}
