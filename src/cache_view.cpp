// GET /cache on the admin port (issue #9 "Visible to operators"): whether the cache can be
// used, each layer's size and hit ratio, and the digests looked up most.

#include "backends_view.hpp"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

namespace sluice {

namespace {

void json_ratio(std::string& out, std::uint64_t hits, std::uint64_t misses) {
    if (hits + misses == 0) {
        out += "null";
        return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f",
                  static_cast<double>(hits) / static_cast<double>(hits + misses));
    out += buf;
}

} // namespace

std::string cache_json(const Shared& shared, const std::vector<std::unique_ptr<Worker>>& workers) {
    const CacheShared& cs = shared.cache;
    std::array<std::uint64_t, 6> requests{};
    std::uint64_t bytes = 0, entries = 0, evictions = 0, fills = 0;
    std::unordered_map<std::string, WorkerCache::DigestCount> digests;
    for (const auto& w : workers) {
        WorkerStats& st = w->stats();
        for (std::size_t i = 0; i < requests.size(); ++i)
            requests[i] += st.cache_requests[i].get();
        bytes += st.l1_bytes.get();
        entries += st.l1_entries.get();
        evictions += st.l1_evictions.get();
        fills += st.cache_fills.get();
        for (auto& d : w->cache().digests()) {
            auto& sum = digests[d.text];
            sum.text = d.text;
            sum.hits += d.hits;
            sum.misses += d.misses;
        }
    }
    std::vector<WorkerCache::DigestCount> hottest;
    hottest.reserve(digests.size());
    for (auto& [text, d] : digests)
        hottest.push_back(std::move(d));
    std::sort(hottest.begin(), hottest.end(), [](const auto& a, const auto& b) {
        return a.hits + a.misses != b.hits + b.misses ? a.hits + a.misses > b.hits + b.misses
                                                      : a.text < b.text;
    });
    if (hottest.size() > 20) hottest.resize(20);

    std::string out = "{\"enabled\":";
    out += cs.enabled ? "true" : "false";
    out += ",\"usable\":";
    out += cs.enabled && cs.usable() ? "true" : "false";
    out += ",\"redis\":[";
    for (std::size_t i = 0; i < cs.redis.size(); ++i) {
        const RedisTarget& t = cs.redis[i];
        if (i) out += ',';
        out += "{\"host\":";
        json_string(out, t.endpoint.host);
        out += ",\"port\":" + std::to_string(t.endpoint.port) + ",\"region\":";
        json_string(out, t.endpoint.region);
        out += ",\"own\":";
        out += t.own ? "true" : "false";
        out += ",\"tls\":";
        out += t.endpoint.tls ? "true" : "false";
        out += '}';
    }
    out += "],\"tables\":" + std::to_string(cs.enabled ? cs.versions_size() : 0);
    out +=
        ",\"l1\":{\"bytes\":" + std::to_string(bytes) + ",\"entries\":" + std::to_string(entries) +
        ",\"evictions\":" + std::to_string(evictions) +
        ",\"max_bytes_per_worker\":" + std::to_string(shared.cfg.cache.l1_max_bytes) +
        ",\"hits\":" + std::to_string(requests[0]) + ",\"misses\":" + std::to_string(requests[1]) +
        ",\"bypass\":" + std::to_string(requests[2]) + ",\"hit_ratio\":";
    json_ratio(out, requests[0], requests[1]);
    out += "},\"l2\":{\"hits\":" + std::to_string(requests[3]) +
           ",\"misses\":" + std::to_string(requests[4]) +
           ",\"bypass\":" + std::to_string(requests[5]) + ",\"hit_ratio\":";
    json_ratio(out, requests[3], requests[4]);
    out += "},\"fills\":" + std::to_string(fills) + ",\"hottest\":[";
    for (std::size_t i = 0; i < hottest.size(); ++i) {
        if (i) out += ',';
        out += "{\"digest\":";
        json_string(out, hottest[i].text);
        out += ",\"hits\":" + std::to_string(hottest[i].hits) +
               ",\"misses\":" + std::to_string(hottest[i].misses) + ",\"hit_ratio\":";
        json_ratio(out, hottest[i].hits, hottest[i].misses);
        out += '}';
    }
    out += "]}\n";
    return out;
}

} // namespace sluice
