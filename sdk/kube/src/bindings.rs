//! Bindings generated from `wit/` for the `kube-state` world. The shared
//! `types` and `host` interfaces are those of `wasmon_sdk::bindings`, so
//! there is one set of types. Plugin authors use the crate root instead.

#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "kube-state",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "__export_kube_state_impl",
    default_bindings_module: "wasmon_sdk_kube::bindings",
    additional_derives: [PartialEq],
    with: {
        "wasmon:plugin/types@0.1.0": wasmon_sdk::bindings::wasmon::plugin::types,
        "wasmon:plugin/host@0.1.0": wasmon_sdk::bindings::wasmon::plugin::host,
    },
});
