// Nanoseconds per classify() and digest() on sysbench oltp_read_write statements.
// Not a test: run it by hand (build target router_bench), numbers go in the report.
//   router_bench [iterations per statement, default 200000]

#include "sluice/router/classify.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

constexpr std::string_view k_statements[] = {
    "SELECT c FROM sbtest1 WHERE id=5012",
    "SELECT c FROM sbtest3 WHERE id BETWEEN 4990 AND 5089",
    "SELECT SUM(k) FROM sbtest7 WHERE id BETWEEN 4990 AND 5089",
    "SELECT c FROM sbtest2 WHERE id BETWEEN 4990 AND 5089 ORDER BY c",
    "SELECT DISTINCT c FROM sbtest9 WHERE id BETWEEN 4990 AND 5089 ORDER BY c",
    "UPDATE sbtest4 SET k=k+1 WHERE id=5012",
    "UPDATE sbtest6 SET c='83868641912-28773972837-60736120486-75162659906-27563526494' "
    "WHERE id=4994",
    "DELETE FROM sbtest5 WHERE id=5021",
    "INSERT INTO sbtest5 (id, k, c, pad) VALUES (5021, 4998, "
    "'58373409458-96024716513-98313485616-51209744208-13587434286', "
    "'84213986193-41386393935-38375659622-24911962417-33932812049')",
    "BEGIN",
    "COMMIT",
    "SELECT id, k FROM sbtest1 WHERE id IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10) FOR UPDATE",
};

volatile std::uint64_t g_sink = 0; // keeps the optimizer from dropping the calls

template <class F> double ns_per_call(std::string_view sql, long iterations, F&& f) {
    for (long i = 0; i < iterations / 10; ++i)
        f(sql); // warm up
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < iterations; ++i)
        f(sql);
    const auto t1 = std::chrono::steady_clock::now();
    return static_cast<double>(
               std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()) /
           static_cast<double>(iterations);
}

} // namespace

int main(int argc, char** argv) {
    const long iterations = argc > 1 ? std::atol(argv[1]) : 200000;
    const auto classify_once = [](std::string_view sql) {
        const auto c = sluice::router::classify(sql);
        g_sink = g_sink + static_cast<std::uint64_t>(c.cls) + c.session_changes.size();
    };
    const auto digest_once = [](std::string_view sql) {
        g_sink = g_sink + sluice::router::digest(sql).hash;
    };
    double total_c = 0;
    double total_d = 0;
    std::printf("%10s %10s  statement\n", "classify", "digest");
    for (std::string_view sql : k_statements) {
        const double c = ns_per_call(sql, iterations, classify_once);
        const double d = ns_per_call(sql, iterations, digest_once);
        total_c += c;
        total_d += d;
        std::printf("%8.0fns %8.0fns  %.60s%s\n", c, d, sql.data(), sql.size() > 60 ? "..." : "");
    }
    const auto n = static_cast<double>(std::size(k_statements));
    std::printf("%8.0fns %8.0fns  mean of %zu statements\n", total_c / n, total_d / n,
                std::size(k_statements));
    return 0;
}
