//go:build race

package archive_test

// raceDetector is set when the tests run under the race detector, which slows pure
// computation (scrypt, zstd) several times over.
const raceDetector = true
