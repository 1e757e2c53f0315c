//! Length-prefixed fields, as the store's log entries hold keys and
//! values: `length (u32, big-endian), bytes`.

use bytes::{BufMut, Bytes, BytesMut};

/// Appends `field`, prefixed with its length.
pub fn put(out: &mut BytesMut, field: &Bytes) {
    // Fields are bounded by the client port's request limit, far below
    // 4 GiB.
    out.put_u32(field.len() as u32);
    out.extend_from_slice(field);
}

/// Takes one prefixed field off the front of `rest`; `None` if `rest`
/// does not start with a whole one.
pub fn take(rest: &mut Bytes) -> Option<Bytes> {
    let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let field = rest.get(4..4 + length).map(|_| rest.slice(4..4 + length))?;
    *rest = rest.slice(4 + length..);
    Some(field)
}

/// Every prefixed field to the end of `rest`.
pub fn take_all(rest: &mut Bytes) -> Option<Vec<Bytes>> {
    let mut fields = Vec::new();
    while !rest.is_empty() {
        fields.push(take(rest)?);
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_a_cut_one_is_refused() {
        let mut out = BytesMut::new();
        put(&mut out, &Bytes::from_static(b"key"));
        put(&mut out, &Bytes::new());
        let whole = out.freeze();
        let mut rest = whole.clone();
        assert_eq!(
            take_all(&mut rest),
            Some(vec![Bytes::from_static(b"key"), Bytes::new()])
        );
        let mut cut = whole.slice(..whole.len() - 1);
        assert_eq!(take_all(&mut cut), None);
        assert_eq!(take(&mut Bytes::from_static(&[0, 0])), None);
    }
}
