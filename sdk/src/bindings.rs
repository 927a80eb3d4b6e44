//! Bindings generated from `wit/` by `wit-bindgen`. Plugin authors normally use
//! the re-exports at the crate root instead.

#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "exporter",
    path: "../wit",
    pub_export_macro: true,
    export_macro_name: "__export_exporter_impl",
    default_bindings_module: "wasmon_sdk::bindings",
    additional_derives: [PartialEq],
});
