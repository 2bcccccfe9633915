//! What could go wrong: a frame that claims to seal its segment but carries a body, or
//! lacks the unit flags a seal always has, is accepted (its checksum verifies: a writer
//! bug or a crafted file), and recovery ends a segment early or reads a body as a seal.
//! Found missing by cargo-mutants (docs/mutants.md).
use tidelog_wal::format::{
    decode_frame, encode_frame_header, FrameCheck, FrameHeader, FrameIssue, SeqRule, FLAG_FIRST,
    FLAG_LAST, FLAG_SEAL,
};
use tidelog_wal::{GlobalSeq, LaneId, LaneSeq, SegmentIndex};

const SEGMENT: SegmentIndex = SegmentIndex(3);

/// The frame's bytes as the writer would lay them out (header, payload, zero padding).
fn frame(flags: u16, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        global_seq: GlobalSeq(9),
        lane: LaneId(0),
        lane_seq: LaneSeq(0),
        wall_ms: 0,
        durable_hint: GlobalSeq(8),
        flags,
    };
    let mut bytes = encode_frame_header(SEGMENT, &header, &[], payload)
        .expect("encodable")
        .to_vec();
    bytes.extend_from_slice(payload);
    bytes.resize(bytes.len().next_multiple_of(8) + 64, 0);
    bytes
}

fn decode(bytes: &[u8]) -> Result<u16, FrameIssue> {
    let check = FrameCheck {
        segment: SEGMENT,
        seq: SeqRule::Exactly(GlobalSeq(9)),
    };
    decode_frame(bytes, 0, &check).map(|f| f.header.flags)
}

#[test]
fn a_bare_header_with_seal_first_and_last_is_a_seal() {
    let all = FLAG_SEAL | FLAG_FIRST | FLAG_LAST;
    assert_eq!(decode(&frame(all, &[])), Ok(all));
}

#[test]
fn a_seal_flag_without_the_unit_flags_is_refused() {
    for flags in [FLAG_SEAL, FLAG_SEAL | FLAG_FIRST, FLAG_SEAL | FLAG_LAST] {
        assert!(
            matches!(decode(&frame(flags, &[])), Err(FrameIssue::BadFlags { .. })),
            "flags {flags:#x}"
        );
    }
}

#[test]
fn a_seal_with_a_body_is_refused() {
    let all = FLAG_SEAL | FLAG_FIRST | FLAG_LAST;
    assert!(matches!(
        decode(&frame(all, b"body")),
        Err(FrameIssue::BadFlags { .. })
    ));
}

#[test]
fn a_record_frame_with_a_body_decodes() {
    let flags = FLAG_FIRST | FLAG_LAST;
    assert_eq!(decode(&frame(flags, b"body")), Ok(flags));
}

#[test]
fn a_record_frame_with_an_unknown_flag_is_refused() {
    let flags = FLAG_FIRST | FLAG_LAST | 1 << 7;
    assert!(matches!(
        decode(&frame(flags, b"body")),
        Err(FrameIssue::BadFlags { .. })
    ));
}
