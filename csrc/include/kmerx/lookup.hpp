// Fused embedding lookup: gather rows (decoding their storage dtype), combine the rows of a token
// (hash embeddings: weighted sum of h rows; quotient-remainder: two tables), add a positional
// encoding, and either write one vector per token or pool per read in the same pass.
#pragma once

#include "kmerx/rows.hpp"
#include "kmerx/table.hpp"

#include <cstdint>

namespace kmerx {

enum class Pool : int { None = 0, Sum = 1, Mean = 2, Max = 3 };
enum class Combine : int { Sum = 0, Product = 1 };

// Rows a lookup reads: dense (row i at base + i * row_bytes) or, for a BlockTable, one pointer per
// id (resolved by BlockTable::resolve, in id order).
struct RowTable {
    const uint8_t* base = nullptr;
    const uint8_t* const* ptrs = nullptr;
    int64_t rows = 0;
    int64_t dim = 0;
    Dtype dtype = Dtype::F32;
};

struct LookupArgs {
    // Token t of read i, for t in [offsets[i], offsets[i + 1]), has ids[t * h .. t * h + h).
    int64_t n_reads = 0;
    const int64_t* offsets = nullptr;
    IdView ids;
    int64_t h = 1;
    // Weight of id j of token t: weights[t * h + j] (per token), else slot_weights[slots[t] * h + j]
    // (learned per bucket, slots[t] < n_slots), else 1.
    const float* weights = nullptr;
    const uint32_t* slots = nullptr;
    const float* slot_weights = nullptr;
    int64_t n_slots = 0;
    RowTable table;
    // Quotient-remainder (qr_m > 0, h == 1): vector = table[id / qr_m] (+ or *) table2[id % qr_m].
    RowTable table2;
    int64_t qr_m = 0;
    Combine combine = Combine::Product;
    // Positional term pos_table[p] (fp32, pos_rows x dim) added to each token's vector, p the
    // token's entry in `positions`, or its index in the read when positions is null. p < 0: none.
    const float* pos_table = nullptr;
    int64_t pos_rows = 0;
    const int32_t* positions = nullptr;
    Pool pool = Pool::None;
    // Output, fp32 or fp16 (out_f16). Pooled: row i per read (mean and max of an empty read are 0).
    // Per token: token t of read i at row out_rows[i] + t - offsets[i] (out_rows null: row t).
    bool out_f16 = false;
    void* out = nullptr;
    const int64_t* out_rows = nullptr;
};

// Multi-threaded over reads (balanced by tokens). Throws std::out_of_range naming the token for an
// id beyond its table, a position beyond pos_table or a slot beyond n_slots.
void lookup(const LookupArgs& a);

// The fixed sinusoidal encoding of "Attention is all you need": row p, column 2i is
// sin(p / 10000^(2i / dim)), column 2i + 1 the cos of the same angle; computed in double.
void sinusoidal_table(int64_t rows, int64_t dim, float* out);

}  // namespace kmerx
