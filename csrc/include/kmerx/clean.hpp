// Read cleaning over a whole batch: byte normalisation, quality trimming, N-run handling, length and
// N filters, reverse-complement augmentation. One call per batch; reads are processed on the pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kmerx::clean {

enum class Invalid : uint8_t { ToN = 0, Keep = 1, Error = 2 };  // bytes that are not ACGTU or IUPAC
enum class NRuns : uint8_t { Keep = 0, Split = 1, Drop = 2 };
enum class Rc : uint8_t { None = 0, Append = 1, Random = 2 };

struct Options {
    bool uppercase = true;          // a-z -> A-Z for every byte
    bool iupac_to_n = true;         // RYKMSWBDHVN (either case) -> N
    bool u_to_t = true;             // U -> T
    Invalid invalid = Invalid::ToN;
    int quality_cutoff5 = -1;       // cutadapt/BWA trimming of the 5' end; < 0: off
    int quality_cutoff3 = -1;       // same for the 3' end
    int phred_offset = 33;
    int64_t min_length = 0;         // pieces shorter than this are dropped (after trimming/splitting)
    double max_n_fraction = -1.0;   // pieces with more Ns than this fraction of their length are dropped; < 0: off
    NRuns n_runs = NRuns::Keep;
    int64_t n_run_length = 1;       // a run of at least this many Ns counts for n_runs
    bool drop_empty = true;
    Rc rc = Rc::None;
    uint64_t seed = 0;              // for Rc::Random
};

// A batch of reads as Arrow lays out binary columns: read i is seq[seq_offsets[i]:seq_offsets[i+1]].
// qual may be null (FASTA): quality trimming is then skipped. read_index (n entries) drives Rc::Random.
struct Input {
    const uint8_t* seq;
    const int64_t* seq_offsets;
    const uint8_t* qual;          // nullable
    const int64_t* qual_offsets;  // nullable with qual
    const int64_t* read_index;    // nullable unless rc == Random
    const uint8_t* name;          // nullable: then no names are built
    const int64_t* name_offsets;
    std::size_t n;
};

// Output read j is the slice [start[j], end[j]) of input read parent[j] (coordinates in the input
// read), reverse-complemented when rc[j]; split[j] is 1 when its parent held an N run that split it.
// seq and qual share offsets (qual is empty when the input had none).
// Names are built only when some output read is a split piece or reverse-complemented (otherwise
// they are the parents' names unchanged and name_offsets stays empty): a piece is named
// `name:START-END` (1-based, inclusive, in the input read) and an rc read gets RC_SUFFIX appended.
struct Result {
    std::vector<uint8_t> seq;
    std::vector<uint8_t> qual;
    std::vector<int64_t> offsets;
    std::vector<int64_t> parent;
    std::vector<int64_t> start;
    std::vector<int64_t> end;
    std::vector<uint8_t> rc;
    std::vector<uint8_t> split;
    std::vector<uint8_t> name;
    std::vector<int64_t> name_offsets;
};

inline constexpr const char* RC_SUFFIX = "/rc";

// Cleans a batch. Throws std::invalid_argument when a qual length differs from its seq length, when
// invalid == Error and a read holds an invalid byte, or on bad options.
Result clean(const Input& in, const Options& opt);

// cutadapt's (BWA's) quality trimming: [start, stop) of the part to keep; (0, 0) when nothing is.
// cutoff < 0 disables that end.
void quality_trim(const uint8_t* qual, int64_t len, int cutoff5, int cutoff3, int offset, int64_t& start,
                  int64_t& stop);

// Whether Rc::Random reverse-complements the read with this read_index (a pure function of both).
bool random_rc(uint64_t seed, int64_t read_index);

}  // namespace kmerx::clean
