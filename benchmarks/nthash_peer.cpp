// Peer driver for benchmarks/bench_nthash.py: the reference ntHash library (Debian libnthash-dev,
// ntHash 2.3) hashing the same sequences as kmerx, as a long-lived process.
//
// Usage: nthash_peer SEQ_FILE K   (SEQ_FILE: one sequence per line)
// Reads the file once (not timed), prints "ready N" (N = bytes), then for every "go" line on stdin
// hashes every sequence with nthash::NtHash (1 hash, canonical h0), storing each hash into one
// preallocated uint64 array (as kmerx writes into a numpy array), and answers
// "done <k-mers> <xor of hashes> <seconds>" with its own timing of the hashing loop.
#include <nthash/nthash.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

// libnthash.a refers to these btllib status helpers without defining them; the driver never hits an
// error path with valid ACGT input, so they only report and abort.
namespace btllib {
void check_error(bool condition, const std::string& msg) {
    if (condition) {
        std::cerr << "nthash error: " << msg << std::endl;
        std::abort();
    }
}
void check_warning(bool condition, const std::string& msg) {
    if (condition) std::cerr << "nthash warning: " << msg << std::endl;
}
}  // namespace btllib

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: nthash_peer SEQ_FILE K" << std::endl;
        return 2;
    }
    const unsigned k = static_cast<unsigned>(std::stoul(argv[2]));
    std::ifstream in(argv[1]);
    std::vector<std::string> seqs;
    std::size_t bytes = 0, kmers_max = 0;
    for (std::string line; std::getline(in, line);) {
        bytes += line.size();
        if (line.size() >= k) kmers_max += line.size() - k + 1;
        seqs.push_back(std::move(line));
    }
    std::vector<uint64_t> out(kmers_max + 1);
    std::cout << "ready " << bytes << std::endl;
    for (std::string cmd; std::getline(std::cin, cmd) && cmd == "go";) {
        const auto t0 = std::chrono::steady_clock::now();
        std::size_t n = 0;
        for (const auto& s : seqs) {
            if (s.size() < k) continue;
            nthash::NtHash h(s.data(), s.size(), 1, k);
            while (h.roll()) out[n++] = h.hashes()[0];
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        uint64_t x = 0;
        for (std::size_t i = 0; i < n; ++i) x ^= out[i];
        std::cout << "done " << n << " " << x << " " << secs << std::endl;
    }
    return 0;
}
