//! Unit tests of the parent module.

use super::*;

#[test]
fn status_names_round_trip() {
    for s in JobStatus::ALL {
        assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), s);
    }
    assert!("done".parse::<JobStatus>().is_err());
}

#[test]
fn validation_rejects_bad_input() {
    let ok = NewJob::new("t", vec![]);
    assert!(ok.validate(0, 10).is_ok());
    assert!(NewJob::new("", vec![]).validate(0, 10).is_err());
    assert!(NewJob::new("t", vec![0; 11]).validate(0, 10).is_err());
    assert!(ok.clone().max_attempts(0).validate(0, 10).is_err());
    assert!(ok
        .clone()
        .delay(Duration::from_secs(11 * 366 * 86400))
        .validate(0, 10)
        .is_err());
    assert!(ok.clone().dedupe_key("").validate(0, 10).is_err());
}
