//! Node-level log collection: tail files (globs, rotation, checkpoints), frame
//! CRI/docker/plain lines, run processors, and ship batches to Loki, Elasticsearch, OTLP or files.

pub mod checkpoint;
pub mod config;
pub mod framing;
pub mod metrics;
pub mod pipeline;
pub mod processor;
pub mod record;
pub mod sinks;
pub mod tailer;

pub use checkpoint::{CheckpointError, CheckpointStore, FileKey, Fingerprint, Position};
pub use config::{BatchConfig, ByteSize, CheckpointConfig, PipelineConfig, PromDuration, SourceConfig};
pub use framing::kubernetes::{PodMetadataSource, PodRef};
pub use framing::{FramingConfig, LogFormat, LongLineMode, MultilineConfig, MultilineMatch};
pub use metrics::{TailerMetrics, TailerMetricsSnapshot};
pub use pipeline::{LogPipeline, PipelineError, PipelineHandle};
pub use processor::{JsonBodyConfig, JsonBodyProcessor, Processor, ProcessorError};
pub use record::{Attributes, LogRecord, LogSource, Stream};
pub use sinks::{SinkConfig, SinkMetrics, SinkMetricsSnapshot};
