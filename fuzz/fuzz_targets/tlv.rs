//! EMV TLV reader (`read_data_objects`, `DataObject::children`): never panics; what it reads
//! written back with `write_data_object` is the input itself, and every offset points at its
//! object's characters in the whole payload (errors and nested fields rely on them).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pix_core::brcode::{DataObject, crc16_ccitt_false, read_data_objects, write_data_object};

fuzz_target!(|data: &[u8]| {
    let _ = crc16_ccitt_false(data);
    let Ok(input) = std::str::from_utf8(data) else { return };
    let Ok(objects) = read_data_objects(input) else { return };
    check_level(input, input, &objects);
    for object in &objects {
        if let Ok(children) = object.children() {
            check_level(input, object.value, &children);
        }
    }
});

/// `objects` were read from `text`, which is part of `payload`.
fn check_level(payload: &str, text: &str, objects: &[DataObject<'_>]) {
    let mut written = String::new();
    for object in objects {
        write_data_object(&mut written, object.tag, object.value).expect("what was read can be written");
        let len = object.value.chars().count();
        assert!(payload.chars().skip(object.value_offset()).take(len).eq(object.value.chars()), "{object:?}");
    }
    assert_eq!(written, text);
}
