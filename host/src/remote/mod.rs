//! Prometheus remote-write 1.0: the wire format (protobuf + snappy block
//! format), and decoding of requests for the receiver endpoint.

pub mod proto;

use prost::Message;
use wasmon_storage::Labels;

/// What a remote-write body or its headers got wrong.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("body is not snappy block-compressed data: {0}")]
    Snappy(#[source] snap::Error),
    #[error("body is not a remote-write WriteRequest protobuf: {0}")]
    Protobuf(#[source] prost::DecodeError),
    #[error("series {index}: {message}")]
    InvalidSeries { index: usize, message: String },
}

/// Decode a request body: snappy block format, then `WriteRequest`.
pub fn decode_request(body: &[u8]) -> Result<proto::WriteRequest, RemoteWriteError> {
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(RemoteWriteError::Snappy)?;
    proto::WriteRequest::decode(raw.as_slice()).map_err(RemoteWriteError::Protobuf)
}

/// Encode a request body the way senders must: protobuf, then snappy block
/// format (never the framed format).
pub fn encode_request(request: &proto::WriteRequest) -> Vec<u8> {
    let raw = request.encode_to_vec();
    // Compression of a buffer we just built cannot fail short of OOM.
    snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
}

/// Labels of one series, checked like Prometheus' receiver: names valid and
/// unique, `__name__` present.
pub fn series_labels(index: usize, series: &proto::TimeSeries) -> Result<Labels, RemoteWriteError> {
    let invalid = |message: String| RemoteWriteError::InvalidSeries { index, message };
    let mut seen = std::collections::HashSet::new();
    for l in &series.labels {
        if !crate::config::is_valid_label_name(&l.name) {
            return Err(invalid(format!("invalid label name {:?}", l.name)));
        }
        if !seen.insert(l.name.as_str()) {
            return Err(invalid(format!("duplicate label name {:?}", l.name)));
        }
    }
    let labels = Labels::from_pairs(series.labels.iter().map(|l| (l.name.clone(), l.value.clone())));
    if labels.metric_name().is_none() {
        return Err(invalid(format!("no __name__ label in {labels}")));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let request = proto::WriteRequest {
            timeseries: vec![proto::TimeSeries {
                labels: vec![proto::Label { name: "__name__".into(), value: "up".into() }],
                samples: vec![proto::Sample { value: 1.0, timestamp: 1000 }],
            }],
            metadata: vec![],
        };
        let body = encode_request(&request);
        assert_eq!(decode_request(&body).unwrap(), request);
        assert!(matches!(decode_request(b"not snappy"), Err(RemoteWriteError::Snappy(_))));
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff, 0xff, 0xff]).unwrap();
        assert!(matches!(decode_request(&not_proto), Err(RemoteWriteError::Protobuf(_))));
    }

    #[test]
    fn series_need_a_name_and_valid_unique_labels() {
        let series = |pairs: &[(&str, &str)]| proto::TimeSeries {
            labels: pairs.iter().map(|(n, v)| proto::Label { name: (*n).into(), value: (*v).into() }).collect(),
            samples: vec![],
        };
        assert!(series_labels(0, &series(&[("__name__", "up"), ("job", "a")])).is_ok());
        let e = series_labels(3, &series(&[("job", "a")])).unwrap_err().to_string();
        assert!(e.contains("series 3") && e.contains("__name__"), "{e}");
        assert!(series_labels(0, &series(&[("__name__", "up"), ("0bad", "a")])).is_err());
        assert!(series_labels(0, &series(&[("__name__", "up"), ("a", "1"), ("a", "2")])).is_err());
    }
}
