//! Bindings generated from `wit/` for the `log-processor` world. The shared
//! `types` and `host` interfaces are those of `wasmon_sdk::bindings`, so
//! there is one set of types. Plugin authors use the crate root instead.

#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "log-processor",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "__export_log_processor_impl",
    default_bindings_module: "wasmon_sdk_logs::bindings",
    additional_derives: [PartialEq, Eq, Hash],
    with: {
        "wasmon:plugin/types@0.1.0": wasmon_sdk::bindings::wasmon::plugin::types,
        "wasmon:plugin/host@0.1.0": wasmon_sdk::bindings::wasmon::plugin::host,
    },
});
