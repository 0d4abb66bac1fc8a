// Package layout knows how recorders name their footage: Nx Witness / DW Spectrum,
// Frigate, and patterns given by the operator. Each maps a file's path to the camera,
// stream, start and duration of the chunk it holds, and back (footage.Layout).
package layout
