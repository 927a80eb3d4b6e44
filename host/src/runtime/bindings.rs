//! Host-side bindings generated from `wit/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "exporter",
    additional_derives: [PartialEq],
});
