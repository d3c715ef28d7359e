// CacheStats (kmerx/table.hpp) as the dict both cache bindings (host BlockTable, CUDA DeviceCache) return.
#pragma once

#include <pybind11/pybind11.h>

#include "kmerx/table.hpp"

namespace kmerx::bind {

inline pybind11::dict cache_stats_dict(const CacheStats& s) {
    pybind11::dict d;
    d["lookups"] = s.lookups;
    d["hits"] = s.hits;
    d["misses"] = s.lookups - s.hits;
    d["loads"] = s.loads;
    d["evictions"] = s.evictions;
    d["writebacks"] = s.writebacks;
    d["bypass"] = s.bypass;
    d["resident_blocks"] = s.resident_blocks;
    d["capacity_blocks"] = s.capacity_blocks;
    d["used_blocks"] = s.used_blocks;
    return d;
}

}  // namespace kmerx::bind
