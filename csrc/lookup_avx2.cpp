// The fused lookup with AVX2 row decoding and F16C conversions (see lookup_kernel.hpp).
#define KMERX_LOOKUP_AVX2 1
#define KMERX_LOOKUP_NS avx2
#include "lookup_kernel.hpp"
