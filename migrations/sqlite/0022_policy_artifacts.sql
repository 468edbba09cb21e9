-- Compiled policy components (issue #17): wasmtime's serialized native code of a component,
-- written by the host after the component passed its load checks, keyed by the component's
-- sha256 and the engine's compatibility tag (wasmtime version and code-generation settings), so
-- that an instance learning of an activation deserializes it in milliseconds instead of compiling
-- it (tens of milliseconds for Rust, seconds for JavaScript or Python). Only this host writes
-- them; see PolicyEngine::deserialize (host/policy/src/engine.rs) for why loading them is safe.
CREATE TABLE policy_artifacts (
    sha256     TEXT NOT NULL REFERENCES policy_components (sha256),
    engine     TEXT NOT NULL,
    artifact   BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (sha256, engine)
);
