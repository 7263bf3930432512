//! Packing the store-gateway hints into `google.protobuf.Any`.
//!
//! Thanos uses gogo `types.MarshalAny` (type URL `type.googleapis.com/<full name>`) and
//! `UnmarshalAny`, which compares only the part after the last `/` and fails on a mismatch.

use prost::Message;
use prost_types::Any;

use crate::convert::ConvertError;
use crate::proto::hintspb;

const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// A message that travels in a `hints` field.
pub trait Hint: Message + Default {
    /// Full proto name, e.g. `hintspb.SeriesRequestHints`.
    const FULL_NAME: &'static str;
}

macro_rules! hint {
    ($($t:ident),* $(,)?) => {
        $(impl Hint for hintspb::$t {
            const FULL_NAME: &'static str = concat!("hintspb.", stringify!($t));
        })*
    };
}

hint!(
    SeriesRequestHints,
    SeriesResponseHints,
    LabelNamesRequestHints,
    LabelNamesResponseHints,
    LabelValuesRequestHints,
    LabelValuesResponseHints,
);

pub fn pack<H: Hint>(h: &H) -> Any {
    Any {
        type_url: format!("{TYPE_URL_PREFIX}{}", H::FULL_NAME),
        value: h.encode_to_vec(),
    }
}

pub fn unpack<H: Hint>(any: &Any) -> Result<H, ConvertError> {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if name != H::FULL_NAME {
        return Err(ConvertError::HintsTypeMismatch {
            got: any.type_url.clone(),
            want: H::FULL_NAME,
        });
    }
    H::decode(any.value.as_slice()).map_err(|source| ConvertError::Decode {
        what: H::FULL_NAME,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_type_url() {
        let h = hintspb::SeriesResponseHints {
            queried_blocks: vec![hintspb::Block {
                id: "01HXXXXXXXXXXXXXXXXXXXXXXX".into(),
            }],
            query_stats: None,
        };
        let any = pack(&h);
        assert_eq!(any.type_url, "type.googleapis.com/hintspb.SeriesResponseHints");
        assert_eq!(unpack::<hintspb::SeriesResponseHints>(&any).unwrap(), h);
        assert!(matches!(
            unpack::<hintspb::SeriesRequestHints>(&any),
            Err(ConvertError::HintsTypeMismatch { .. })
        ));
    }
}
