//! Kube-state plugins (world `kube-state`): a long-lived instance fed with
//! Kubernetes object events by the host's watches, answering `collect` from
//! its own state. Write a type implementing [`KubeState`] and export it with
//! [`export_kube_state!`]. Everything else (families, logging, config) comes
//! from `wasmon_sdk`, as for exporters.
//!
//! ```
//! use wasmon_sdk_kube::{Change, Exposition, KubeState, ObjectEvent, Resource};
//! use wasmon_sdk::{Family, PluginError, PluginInfo};
//!
//! /// Counts the pods it was told about.
//! #[derive(Default)]
//! struct PodCount(std::collections::BTreeSet<String>);
//!
//! impl KubeState for PodCount {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("pod-count", "0.1.0", "Counts pods.")
//!     }
//!     fn check_config(_config: &str) -> Result<(), PluginError> {
//!         Ok(())
//!     }
//!     fn init(_config: &str) -> Result<(Self, Vec<Resource>), PluginError> {
//!         Ok((Self::default(), vec![Resource::core("v1", "pods", "Pod", true)]))
//!     }
//!     fn apply(&mut self, events: Vec<ObjectEvent>) -> Result<(), PluginError> {
//!         for event in events {
//!             match event.change {
//!                 Change::Applied => self.0.insert(event.object),
//!                 Change::Deleted => self.0.remove(&event.object),
//!             };
//!         }
//!         Ok(())
//!     }
//!     fn collect(&mut self, out: &mut Exposition) -> Result<(), PluginError> {
//!         let mut pods = Family::gauge("pods", "Pods known.");
//!         pods.sample(&[], self.0.len() as f64);
//!         out.families(&[pods.build()]);
//!         Ok(())
//!     }
//! }
//!
//! wasmon_sdk_kube::export_kube_state!(PodCount);
//!
//! // Natively the same type is driven directly:
//! let (mut state, kinds) = PodCount::init("{}").unwrap();
//! assert_eq!(kinds[0].plural, "pods");
//! state.apply(vec![ObjectEvent::applied(0, "a"), ObjectEvent::applied(0, "b")]).unwrap();
//! assert_eq!(state.collect_families().unwrap()[0].metrics.len(), 1);
//! ```

pub mod bindings;

pub use bindings::wasmon::plugin::kube::{Change, ObjectEvent, Resource};
#[doc(hidden)]
pub use wasmon_sdk as __sdk;
use wasmon_sdk::{MetricFamily, PluginError, PluginInfo};

/// Where [`KubeState::collect`] writes its output: Prometheus text (0.0.4) in
/// fragments, each complete on its own; a family may continue in a later
/// fragment and the host merges them by name (`wit/kube.wit`, `exposition`).
/// In the component each fragment goes to the host as it is written, so the
/// plugin never holds the whole output; natively (tests, benchmarks) they are
/// kept, and [`KubeState::collect_families`] parses them as the host does.
#[derive(Debug, Default)]
pub struct Exposition {
    full: bool,
    bytes: usize,
    #[cfg(not(target_arch = "wasm32"))]
    fragments: Vec<String>,
}

impl Exposition {
    /// Write one fragment of text. Returns false once the host's limit for
    /// one `collect` is reached: nothing more is taken and the collect fails
    /// with that reason, so the plugin should stop rendering.
    pub fn text(&mut self, fragment: &str) -> bool {
        if self.full {
            return false;
        }
        if fragment.is_empty() {
            return true;
        }
        self.bytes += fragment.len();
        #[cfg(target_arch = "wasm32")]
        {
            self.full = !bindings::wasmon::plugin::exposition::write(fragment);
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.fragments.push(fragment.to_string());
        !self.full
    }

    /// Write families as one fragment (the SDK's encoder; for plugins whose
    /// output is small enough to build as [`MetricFamily`] values).
    pub fn families(&mut self, families: &[MetricFamily]) -> bool {
        self.text(&wasmon_sdk::text::encode(families, wasmon_sdk::text::Format::Prometheus))
    }

    /// True once the host refused a fragment.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The fragments written (native builds only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn fragments(&self) -> &[String] {
        &self.fragments
    }
}

/// A kube-state plugin. Unlike an [`Exporter`](wasmon_sdk::Exporter), one value
/// lives as long as the job: the host calls [`init`](Self::init) once, then
/// [`apply`](Self::apply) with each batch of object changes and
/// [`collect`](Self::collect) on each scrape. If the instance traps, the host
/// starts a new one and re-lists every watch.
pub trait KubeState: Sized + 'static {
    /// Describe the plugin (`wasmon plugin inspect`).
    fn describe() -> PluginInfo;
    /// Check the plugin's config section (JSON text) without starting.
    fn check_config(config: &str) -> Result<(), PluginError>;
    /// Start from the config section (JSON text): the state, and the kinds
    /// the host should watch (events name them by index into this list).
    fn init(config: &str) -> Result<(Self, Vec<Resource>), PluginError>;
    /// Apply a batch of object changes, in order. A bad object should be
    /// logged and skipped rather than fail the batch.
    fn apply(&mut self, events: Vec<ObjectEvent>) -> Result<(), PluginError>;
    /// Write the current families of everything applied so far to `out`.
    fn collect(&mut self, out: &mut Exposition) -> Result<(), PluginError>;

    /// [`collect`](Self::collect) read back into families the way the host
    /// reads it (natively, for tests).
    #[cfg(not(target_arch = "wasm32"))]
    fn collect_families(&mut self) -> Result<Vec<MetricFamily>, PluginError> {
        let mut out = Exposition::default();
        self.collect(&mut out)?;
        wasmon_sdk::text::parse_fragments(out.fragments())
            .map_err(|e| PluginError::internal(format!("collect wrote text the host cannot read: {e}")))
    }
}

impl Resource {
    /// A kind in the core API group (`pods`, `nodes`, ...).
    pub fn core(version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self::new("", version, plural, kind, namespaced)
    }

    /// A kind in a named API group (`apps`, `batch`, ...).
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self { group: group.into(), version: version.into(), plural: plural.into(), kind: kind.into(), namespaced }
    }
}

impl ObjectEvent {
    /// An `applied` event for the kind at index `resource` (for tests).
    pub fn applied(resource: u32, object: impl Into<String>) -> Self {
        Self { change: Change::Applied, resource, object: object.into() }
    }

    /// A `deleted` event for the kind at index `resource` (for tests).
    pub fn deleted(resource: u32, object: impl Into<String>) -> Self {
        Self { change: Change::Deleted, resource, object: object.into() }
    }
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use std::cell::RefCell;

    /// Where the exported instance keeps its one value between calls. wasm32
    /// components are single-threaded, so a thread-local is the instance.
    pub struct Slot<T>(RefCell<Option<T>>);

    impl<T: KubeState> Slot<T> {
        pub const fn new() -> Self {
            Self(RefCell::new(None))
        }

        pub fn init(&self, config: &str) -> Result<Vec<Resource>, PluginError> {
            let (state, resources) = T::init(config)?;
            *self.0.borrow_mut() = Some(state);
            Ok(resources)
        }

        pub fn with<R>(&self, f: impl FnOnce(&mut T) -> Result<R, PluginError>) -> Result<R, PluginError> {
            match self.0.borrow_mut().as_mut() {
                Some(state) => f(state),
                None => Err(PluginError::internal("the host called the plugin before `init`")),
            }
        }
    }

    impl<T: KubeState> Default for Slot<T> {
        fn default() -> Self {
            Self::new()
        }
    }
}

/// Export a type implementing [`KubeState`] as the entry points of the
/// `kube-state` world. Call it once, at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export_kube_state {
    ($ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __WASMON_KUBE_STATE: $crate::__private::Slot<$ty> =
                    const { $crate::__private::Slot::new() };
            }

            struct __WasmonKubeStateExport;

            impl $crate::bindings::Guest for __WasmonKubeStateExport {
                fn describe() -> $crate::__sdk::PluginInfo {
                    <$ty as $crate::KubeState>::describe()
                }
                fn check_config(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::__sdk::PluginError> {
                    <$ty as $crate::KubeState>::check_config(&config)
                }
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Resource>, $crate::__sdk::PluginError> {
                    __WASMON_KUBE_STATE.with(|slot| slot.init(&config))
                }
                fn apply(
                    events: ::std::vec::Vec<$crate::ObjectEvent>,
                ) -> ::std::result::Result<(), $crate::__sdk::PluginError> {
                    __WASMON_KUBE_STATE.with(|slot| slot.with(|s| $crate::KubeState::apply(s, events)))
                }
                fn collect() -> ::std::result::Result<(), $crate::__sdk::PluginError> {
                    let mut out = $crate::Exposition::default();
                    __WASMON_KUBE_STATE.with(|slot| slot.with(|s| $crate::KubeState::collect(s, &mut out)))
                }
            }

            $crate::bindings::__export_kube_state_impl!(
                __WasmonKubeStateExport with_types_in $crate::bindings
            );
        };
    };
}
