// Tokenization: a read's bases -> token ids for an embedding table, one native call per batch
// (kmerx.tokenizers; docs/tokenizers.md). A TokenScheme makes a read's raw tokens; encode() adds the
// special tokens, truncates, pads and writes the batch's arrays.
//
// Raw tokens, by scheme family:
//   windows  one token per k-mer window starting at p = 0, stride, 2*stride, ... (p + k <= len); a window
//            holding a non-ACGT base (or, for a vocabulary, a k-mer it lacks) gets the `unk` id. Ids:
//            direct (offset + 2-bit code), vocab (VocabTable), hashed (offset + ntHash mod B), lsh
//            (lsh.hpp: random projection or bit sampling). Each token has h ids (h >= 1).
//   pieces   Nucleotide-Transformer style: maximal ACGT runs cut into non-overlapping k-mers from the run
//            start, a remainder shorter than k as one token per base; each byte with an id of its own
//            (N) is one token; each maximal run of other bytes is one `unk` token.
//   chars    one token per byte, id = char_id[byte].
// Every token carries its start offset in the read (its position).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kmerx/encode.hpp"  // Strand, kInvalidBase
#include "kmerx/hash.hpp"
#include "kmerx/vocab.hpp"

namespace kmerx {

class TokenScheme {
public:
    virtual ~TokenScheme() = default;
    int ids_per_token() const { return h_; }
    bool has_slots() const { return weight_buckets_ > 0; }
    // Number of raw tokens of the read seq[0..len).
    virtual int64_t count(const uint8_t* seq, int64_t len) const = 0;
    // Writes raw tokens first .. first + n - 1 of the read (n <= count - first): their ids to
    // ids[t * h ..], start offsets to pos[t] and, when slots is not null, weight slots to slots[t].
    virtual void fill(const uint8_t* seq, int64_t len, int64_t first, int64_t n, uint32_t* ids, int32_t* pos,
                      uint32_t* slots) const = 0;

protected:
    int h_ = 1;
    uint64_t weight_buckets_ = 0;
};

// Byte -> base digit (0..3) or kInvalidBase, and each digit's complement. `order` names the digits
// ("ACGT": the 2-bit code; "ATCG": itertools.product order, as DNABERT and NT number their k-mers);
// lowercase maps like uppercase when fold_case, else it is invalid (vocabularies of uppercase k-mers).
struct BaseTable {
    std::array<uint8_t, 256> digit;
    std::array<uint8_t, 4> comp;
};
BaseTable make_base_table(const std::string& order, bool fold_case);

// ---- window schemes (std::invalid_argument naming k, stride, buckets, ... when out of range) ------
// id = offset + code of the window (min of both strands when canonical); k 1..15.
std::unique_ptr<TokenScheme> direct_scheme(int k, int64_t stride, Strand strand, const BaseTable& base,
                                           uint32_t offset, uint32_t unk);
// id = vocab id of the window's code (its strand as the vocabulary was counted), unk when absent.
// `vocab` must outlive the scheme. k 1..64.
std::unique_ptr<TokenScheme> vocab_scheme(int k, int64_t stride, Strand strand, const VocabTable* vocab,
                                          uint32_t unk);
// ids j = 0..h-1: offset + (ntHash j of the window mod buckets), ntHash's extra hashes for j >= 1 (the
// canonical / forward hash as hash.hpp defines them). With weight_buckets > 0 each token also gets the
// slot offset + (ntHash h mod weight_buckets). Any k >= 1; buckets 1..2^32 - 1 - offset.
std::unique_ptr<TokenScheme> hashed_scheme(int64_t k, int64_t stride, Strand strand, int h, uint64_t buckets,
                                           uint64_t weight_buckets, uint32_t offset, uint32_t unk);

// ---- pieces and chars ------------------------------------------------------------------------------
// kmer ids: kmer_offset + code of the piece under `base` (which decides what an ACGT byte is);
// other bytes: char_id[byte], where unk marks bytes that join into one unk token per run.
std::unique_ptr<TokenScheme> pieces_scheme(int k, const BaseTable& base, uint32_t kmer_offset,
                                           const std::array<uint32_t, 256>& char_id, uint32_t unk);
std::unique_ptr<TokenScheme> chars_scheme(const std::array<uint32_t, 256>& char_id);

// ---- batch encoding ---------------------------------------------------------------------------------
struct TokenLayout {
    std::vector<uint32_t> prefix, suffix;  // special ids around each read's tokens
    int64_t max_tokens = -1;               // raw tokens kept per read (-1: all)
    bool truncate_left = false;            // keep the last max_tokens instead of the first
    int64_t width = 0;                     // padded output: row width (>= every length); 0: list output
    bool pad_left = false;
    uint32_t pad_id = 0;
};

// Output arrays; ids holds h values per token. List output: token t of read r at out_offsets[r] + t.
// Padded output (width > 0): read r's row at r * width; attention 1 on tokens, 0 on padding.
struct TokenOutput {
    uint32_t* ids;
    uint8_t* special;    // 1 on special tokens (and padding)
    uint8_t* attention;  // padded output only (else null)
    int32_t* pos;        // null when not wanted; -1 on special tokens and padding
    uint32_t* slots;     // null unless the scheme has slots; specials and padding get their own id
};

// Pass 1: raw token counts per read. Multi-threaded.
void token_counts(const TokenScheme& s, const uint8_t* data, const int64_t* offsets, std::size_t n,
                  int64_t* counts);
// Length of a read's encoding given its raw count.
int64_t encoded_length(const TokenLayout& layout, int64_t raw);
// Pass 2: the encodings. raw: pass 1's counts; out_offsets: prefix sums of the encoded lengths (list
// output; ignored when padded). Multi-threaded over reads.
void encode_tokens(const TokenScheme& s, const uint8_t* data, const int64_t* offsets, std::size_t n,
                   const int64_t* raw, const TokenLayout& layout, const int64_t* out_offsets,
                   const TokenOutput& out);

}  // namespace kmerx
