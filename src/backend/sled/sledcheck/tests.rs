//! Unit tests of the parent module.

use super::*;

#[test]
fn record_round_trips_and_rejects_damage() {
    let r = Record {
        gen: 7,
        next_seq: 42,
        jobs: Some(Digest { count: 3, sum: 99 }),
    };
    let b = r.encode();
    assert_eq!(Record::decode(&b), Some(r));
    let r0 = Record { jobs: None, ..r };
    assert_eq!(Record::decode(&r0.encode()), Some(r0));
    for i in 0..b.len() {
        let mut d = b.clone();
        d[i] ^= 1;
        assert_eq!(Record::decode(&d), None, "byte {i}");
    }
}
