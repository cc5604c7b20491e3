// The conventions of the CUDA kernels' plain C++ API: no TensorRT type appears in it, so the plugins, the
// kernels' C ABI, the tests and the benchmarks all call the same functions. Each op declares its own in its
// folder, ops/<op>/<op>_kernels.h, which includes this header.
//
// Conventions of every function:
//  - pointers named d_* are device pointers; all work is enqueued on `stream` and nothing synchronizes,
//    so every call can be captured in a CUDA graph;
//  - nothing allocates: scratch memory is the caller's `workspace` of at least the size the matching
//    *WorkspaceSize query returns (256-byte aligned, as cudaMalloc returns it); a smaller one is refused
//    with cudaErrorInvalidValue before anything is enqueued;
//  - results are deterministic: no output depends on the order in which threads run;
//  - neighbour maps are output-stationary, int32 [K, M], row k at d_neighbors + k * M, -1 = no input;
//    every consumer of a map treats an entry outside [0, N) (negative, >= N, garbage) as "no input" and never
//    reads through it: memory safety never depends on the map's contents. TensorRT runs plugins on
//    uninitialized inputs while it times tactics, and a map may come from anywhere;
//  - site coordinates are int32 rows (batch, c_0, ..., c_{D-1}) that are valid for the geometry (inside the
//    grid, no duplicates), as SparseTensor guarantees; invalid rows are not detected, and give unspecified
//    (but in-bounds) results: no function reads or writes outside its buffers whatever the coordinates.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "sparsetrt/geometry.h"
#include "sparsetrt/op_fields.h"  // the schema's enums: Activation, Reduction
