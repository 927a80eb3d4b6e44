//! Host-side bindings generated from `wit/`.
//!
//! Exports are called asynchronously so that a call waiting on the network
//! (`wasi:sockets`, `wasi:http`) can be abandoned at its deadline; the host's
//! own imports (`host`, `files`, `system`, `secrets`) stay synchronous, except
//! `passthrough.scrape`, which waits on the network itself.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "exporter",
    additional_derives: [PartialEq],
    imports: { "wasmon:plugin/passthrough.scrape": async },
    exports: { default: async },
});
