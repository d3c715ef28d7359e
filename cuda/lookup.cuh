// The fused embedding lookup on the GPU: the same op as kmerx::lookup (csrc/include/kmerx/lookup.hpp)
// with every pointer of LookupArgs a device pointer (RowTable.ptrs: a device array of device row
// pointers). Rows are decoded by the functions of rows.hpp, so values equal the CPU's decoding; sums
// run in fp32 in token order, as on the CPU.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kmerx/lookup.hpp"

namespace kmerx::cuda {

// Checks the layout of a lookup's reads on the device and returns offsets[n_reads], the end of the
// token range (ids need end * h entries). Throws std::invalid_argument naming offsets (a start
// other than 0, decreasing entries) or out_rows (a read whose rows fall outside [0, out_capacity)), with
// the first offending read. out_rows may be null (then out_capacity is ignored).
int64_t check_reads(const int64_t* d_offsets, int64_t n_reads, const int64_t* d_out_rows, int64_t out_capacity,
                    cudaStream_t stream);

// Runs the lookup and synchronises `stream`. Trusts the layout (check_reads first); throws
// std::out_of_range naming the first token whose id lies beyond its table, whose position lies
// beyond pos_table or whose slot lies beyond n_slots (the output is then unspecified).
void lookup(const LookupArgs& a, cudaStream_t stream);

}  // namespace kmerx::cuda
