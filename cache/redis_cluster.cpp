#include "sluice/cache/redis_cluster.hpp"

#include "redis_link.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <exception>
#include <optional>
#include <utility>

namespace sluice::cache {

namespace {

using detail::use_tuple;
using detail::wake;
using Clock = std::chrono::steady_clock;

// An index into the node list; the slot map holds one per slot.
using NodeIndex = std::uint16_t;
constexpr NodeIndex no_node = 0xFFFF;

constexpr std::string_view cluster_slots_command = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
constexpr std::string_view asking_command = "*1\r\n$6\r\nASKING\r\n";

class ClusterCategory final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sluice.redis_cluster"; }
    std::string message(int ev) const override {
        switch (static_cast<cluster_errc>(ev)) {
        case cluster_errc::no_slot_map:
            return "Redis Cluster slot map unknown (no node answered CLUSTER SLOTS)";
        case cluster_errc::slot_unassigned:
            return "Redis Cluster slot served by no master";
        case cluster_errc::bad_slot_map:
            return "malformed CLUSTER SLOTS reply";
        }
        return "unknown Redis Cluster error";
    }
};

Bytes as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Reads "<prefix><decimal>\r\n" at `pos`; the number, with `pos` moved past the CRLF.
std::optional<std::size_t> read_header(Bytes in, std::size_t& pos, std::uint8_t prefix) {
    if (pos >= in.size() || in[pos] != prefix) return std::nullopt;
    std::size_t i = pos + 1, n = 0;
    const std::size_t start = i;
    for (; i < in.size() && in[i] >= '0' && in[i] <= '9' && i - start < 10; ++i)
        n = n * 10 + (in[i] - '0');
    if (i == start || i + 1 >= in.size() || in[i] != '\r' || in[i + 1] != '\n') return std::nullopt;
    pos = i + 2;
    return n;
}

// Splits a pipeline made by write_command (RESP arrays of bulk strings) into its commands;
// std::nullopt when the bytes are not such a pipeline.
std::optional<std::vector<Bytes>> split_commands(Bytes in) {
    std::vector<Bytes> out;
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::size_t begin = pos;
        const auto args = read_header(in, pos, '*');
        if (!args || *args == 0) return std::nullopt;
        for (std::size_t a = 0; a < *args; ++a) {
            const auto len = read_header(in, pos, '$');
            if (!len || in.size() - pos < *len + 2) return std::nullopt;
            pos += *len + 2;
            if (in[pos - 2] != '\r' || in[pos - 1] != '\n') return std::nullopt;
        }
        out.push_back(in.subspan(begin, pos - begin));
    }
    return out;
}

bool maybe_redirect(const Reply& r) noexcept {
    return r.kind == ReplyKind::error && (r.str.starts_with("MOVED ") || r.str.starts_with("ASK "));
}

} // namespace

const boost::system::error_category& cluster_category() noexcept {
    static const ClusterCategory category;
    return category;
}

result<std::vector<ClusterSlotRange>> parse_cluster_slots(const Reply& reply,
                                                          std::string_view queried_host) {
    if (reply.kind != ReplyKind::array) return cluster_errc::bad_slot_map;
    std::vector<ClusterSlotRange> ranges;
    ranges.reserve(reply.elements.size());
    for (const Reply& entry : reply.elements) {
        const auto& e = entry.elements;
        if (entry.kind != ReplyKind::array || e.size() < 3 || e[0].kind != ReplyKind::integer ||
            e[1].kind != ReplyKind::integer || e[2].kind != ReplyKind::array)
            return cluster_errc::bad_slot_map;
        const std::int64_t first = e[0].integer, last = e[1].integer;
        if (first < 0 || last < first || last >= static_cast<std::int64_t>(cluster_slots))
            return cluster_errc::bad_slot_map;
        const auto& master = e[2].elements;
        if (master.size() < 2 || master[0].kind != ReplyKind::bulk ||
            master[1].kind != ReplyKind::integer || master[1].integer < 1 ||
            master[1].integer > 65535)
            return cluster_errc::bad_slot_map;
        if (master[0].str == "?") continue; // the node's endpoint is unknown to this node
        ClusterSlotRange range;
        range.first = static_cast<std::uint16_t>(first);
        range.last = static_cast<std::uint16_t>(last);
        range.host = master[0].str.empty() ? std::string(queried_host) : master[0].str;
        range.port = static_cast<std::uint16_t>(master[1].integer);
        ranges.push_back(std::move(range));
    }
    return ranges;
}

struct RedisCluster::Node {
    Node(const asio::any_io_executor& ex, RedisEndpoint ep, asio::ssl::context* tls,
         ReaderLimits limits)
        : conn(ex, std::move(ep), tls, limits) {}
    RedisConn conn;
};

struct RedisCluster::Impl {
    Impl(asio::any_io_executor executor, std::vector<RedisEndpoint> seeds,
         asio::ssl::context* context, ClusterOptions opts)
        : ex(std::move(executor)), tls(context), options(opts),
          refresh_timer(ex, Clock::time_point::max()), map_ready(ex, Clock::time_point::max()) {
        if (!seeds.empty()) node_template = seeds.front();
        node_template.tls_server_name.clear(); // each node's own host
        for (RedisEndpoint& seed : seeds)
            nodes.push_back(std::make_unique<Node>(ex, std::move(seed), tls, options.limits));
    }

    NodeIndex node_index(std::string_view host, std::uint16_t port);
    void request_refresh(const std::shared_ptr<Impl>& self);
    static asio::awaitable<void> refresher(std::shared_ptr<Impl> self);
    static asio::awaitable<void> fetch_map(std::shared_ptr<Impl> self);
    static asio::awaitable<result<std::vector<Reply>>> follow(std::shared_ptr<Impl> self,
                                                              std::string origin_host,
                                                              Bytes commands,
                                                              std::vector<Reply> replies);

    asio::any_io_executor ex;
    asio::ssl::context* tls;
    ClusterOptions options;
    RedisEndpoint node_template;              // the first seed's settings, for discovered nodes
    std::vector<std::unique_ptr<Node>> nodes; // the seeds, then each node a map named; kept
    std::vector<NodeIndex> owners;            // slot -> master; empty until the first map
    bool closed = false;
    bool refresher_active = false; // the refresher coroutine exists (maybe waiting its turn)
    bool refresh_running = false;  // a CLUSTER SLOTS fetch is in progress
    bool refresh_wanted = false;   // another fetch was asked for since the last one started
    Clock::time_point next_refresh_at{};
    error_code map_error;             // why the last fetch failed; clear after one succeeded
    asio::steady_timer refresh_timer; // the refresher waits here for next_refresh_at
    asio::steady_timer map_ready;     // never expires: calls wait here for the first map
    ClusterStats stats;
};

NodeIndex RedisCluster::Impl::node_index(std::string_view host, std::uint16_t port) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const RedisEndpoint& ep = nodes[i]->conn.endpoint();
        if (ep.port == port && ep.host == host) return static_cast<NodeIndex>(i);
    }
    if (nodes.size() >= no_node) return no_node; // not a real cluster: 1000 nodes at most
    RedisEndpoint ep = node_template;
    ep.host = host;
    ep.port = port;
    nodes.push_back(std::make_unique<Node>(ex, std::move(ep), tls, options.limits));
    return static_cast<NodeIndex>(nodes.size() - 1);
}

void RedisCluster::Impl::request_refresh(const std::shared_ptr<Impl>& self) {
    if (closed) return;
    refresh_wanted = true;
    if (refresher_active) return;
    refresher_active = true;
    // Allowed now: the fetch counts as running at once, so calls waiting for a first map
    // wait for it instead of failing.
    if (Clock::now() >= next_refresh_at) refresh_running = true;
    asio::co_spawn(ex, refresher(self), [self](std::exception_ptr e) {
        if (!e) return;
        // Only an allocation failure gets here: give up this fetch; the next failed call
        // asks for another.
        self->refresher_active = false;
        self->refresh_running = false;
        wake(self->map_ready);
    });
}

asio::awaitable<void> RedisCluster::Impl::refresher(std::shared_ptr<Impl> self) {
    Impl& s = *self;
    while (!s.closed && s.refresh_wanted) {
        if (!s.refresh_running) {
            s.refresh_timer.expires_at(s.next_refresh_at);
            co_await s.refresh_timer.async_wait(use_tuple); // close() cancels it
            if (s.closed) break;
            s.refresh_running = true;
        }
        s.refresh_wanted = false;
        s.next_refresh_at = Clock::now() + s.options.min_refresh_interval;
        co_await fetch_map(self);
        s.refresh_running = false;
        wake(s.map_ready);
    }
    s.refresher_active = false;
    s.refresh_running = false;
    wake(s.map_ready);
}

asio::awaitable<void> RedisCluster::Impl::fetch_map(std::shared_ptr<Impl> self) {
    Impl& s = *self;
    // Nodes whose connection works first: one round trip, no connect; then the others (and
    // the seeds) in order. A node in its backoff refuses at once, so a dead one costs nothing.
    std::vector<Node*> order;
    order.reserve(s.nodes.size());
    for (auto& n : s.nodes)
        if (n->conn.up()) order.push_back(n.get());
    for (auto& n : s.nodes)
        if (!n->conn.up()) order.push_back(n.get());
    error_code last = cluster_errc::no_slot_map;
    for (Node* n : order) {
        if (s.closed) co_return;
        // Node objects are never removed, so `n` stays valid while nodes are added.
        auto r = co_await n->conn.run(as_bytes(cluster_slots_command), 1);
        if (s.closed) co_return;
        if (!r) {
            last = r.error();
            continue;
        }
        auto ranges = parse_cluster_slots(r->front(), n->conn.endpoint().host);
        if (!ranges) {
            last = ranges.error();
            continue;
        }
        if (ranges->empty()) { // a node that is not (yet) part of a cluster
            last = cluster_errc::no_slot_map;
            continue;
        }
        std::vector<NodeIndex> fresh(cluster_slots, no_node);
        for (const ClusterSlotRange& range : *ranges) {
            const NodeIndex i = s.node_index(range.host, range.port);
            std::fill(fresh.begin() + range.first, fresh.begin() + range.last + 1, i);
        }
        s.owners.swap(fresh);
        s.map_error = {};
        ++s.stats.refreshes;
        co_return;
    }
    s.map_error = last;
    ++s.stats.refresh_failures;
}

asio::awaitable<result<std::vector<Reply>>> RedisCluster::Impl::follow(std::shared_ptr<Impl> self,
                                                                       std::string origin_host,
                                                                       Bytes commands,
                                                                       std::vector<Reply> replies) {
    Impl& s = *self;
    auto parts = split_commands(commands);
    // Commands that cannot be matched to their replies: the redirections go back as they are.
    if (!parts || parts->size() != replies.size()) co_return std::move(replies);

    struct Hop {
        std::size_t index;
        Redirect to;
    };
    std::vector<Hop> hops;
    for (std::size_t i = 0; i < replies.size(); ++i) {
        if (!maybe_redirect(replies[i])) continue;
        auto to = parse_redirect(replies[i]);
        if (!to) continue;
        if (to->host.empty()) to->host = origin_host; // Redis 7: the node that answered
        hops.push_back(Hop{i, std::move(*to)});
    }

    // One pipeline per node named (nearly always one), each command in its original order.
    std::vector<bool> done(hops.size(), false);
    for (std::size_t h = 0; h < hops.size(); ++h) {
        if (done[h]) continue;
        const std::string host = hops[h].to.host;
        const std::uint16_t port = hops[h].to.port;
        const NodeIndex target = s.node_index(host, port);
        if (target == no_node) co_return std::move(replies);
        std::vector<std::uint8_t> pipeline;
        std::vector<std::size_t> group;
        std::size_t expected = 0;
        for (std::size_t k = h; k < hops.size(); ++k) {
            const Hop& hop = hops[k];
            if (done[k] || hop.to.port != port || hop.to.host != host) continue;
            done[k] = true;
            group.push_back(k);
            if (hop.to.kind == Redirect::Kind::ask) {
                // ASKING lets the importing node serve the next command for a slot it does
                // not own yet; the map stays as it is.
                ++s.stats.ask;
                pipeline.insert(pipeline.end(), asking_command.begin(), asking_command.end());
                ++expected;
            } else {
                ++s.stats.moved;
                if (!s.owners.empty() && hop.to.slot < s.owners.size())
                    s.owners[hop.to.slot] = target;
            }
            const Bytes part = (*parts)[hop.index];
            pipeline.insert(pipeline.end(), part.begin(), part.end());
            ++expected;
        }
        if (std::any_of(group.begin(), group.end(),
                        [&](std::size_t k) { return hops[k].to.kind == Redirect::Kind::moved; }))
            s.request_refresh(self);

        Node* node = s.nodes[target].get();
        auto r = co_await node->conn.run(pipeline, expected);
        if (!r) {
            ++s.stats.redirect_failures;
            if (r.error() != asio::error::operation_aborted) s.request_refresh(self);
            co_return r.error();
        }
        std::size_t at = 0;
        for (std::size_t k : group) {
            if (hops[k].to.kind == Redirect::Kind::ask) ++at; // ASKING's +OK
            replies[hops[k].index] = std::move((*r)[at++]);
        }
    }
    co_return std::move(replies);
}

RedisCluster::RedisCluster(asio::any_io_executor executor, std::vector<RedisEndpoint> seeds,
                           asio::ssl::context* tls, ClusterOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(seeds), tls, options)) {}

RedisCluster::~RedisCluster() { close(); }

asio::awaitable<result<std::vector<Reply>>> RedisCluster::run(std::uint16_t slot, Bytes commands,
                                                              std::size_t replies) {
    // The call keeps the state alive: it may resume after this object is gone (close()
    // fails the node's call, but a reply may already be on its way to it). One reference
    // count per call, beside a network round trip.
    std::shared_ptr<Impl> self = impl_;
    Impl& s = *self;
    ++s.stats.calls;
    error_code refusal;
    if (slot >= cluster_slots || commands.empty() || replies == 0)
        refusal = asio::error::invalid_argument;
    else if (s.closed)
        refusal = redis_errc::closed;
    if (refusal) {
        ++s.stats.failed_calls;
        co_return refusal;
    }

    if (s.owners.empty()) {
        // The first call (or every call while no node answers): wait for a fetch in
        // progress; while fetches are rate-limited, fail at once.
        if (!s.refresh_running) s.request_refresh(self);
        if (s.refresh_running) co_await s.map_ready.async_wait(use_tuple);
        if (s.closed)
            refusal = redis_errc::closed;
        else if (s.owners.empty())
            refusal = s.map_error ? s.map_error : make_error_code(cluster_errc::no_slot_map);
        if (refusal) {
            ++s.stats.failed_calls;
            co_return refusal;
        }
    }
    const NodeIndex owner = s.owners[slot];
    if (owner == no_node) {
        s.request_refresh(self);
        ++s.stats.failed_calls;
        co_return make_error_code(cluster_errc::slot_unassigned);
    }

    Node* node = s.nodes[owner].get();
    auto r = co_await node->conn.run(commands, replies);
    if (!r) {
        // A node down, or in trouble: its slots may have a new master (a failover).
        if (r.error() != asio::error::operation_aborted) s.request_refresh(self);
        ++s.stats.failed_calls;
        co_return r.error();
    }
    if (std::none_of(r->begin(), r->end(), maybe_redirect)) co_return r;
    auto followed =
        co_await Impl::follow(self, node->conn.endpoint().host, commands, std::move(*r));
    if (!followed) ++s.stats.failed_calls;
    co_return followed;
}

void RedisCluster::close() noexcept {
    Impl& s = *impl_;
    if (s.closed) return;
    s.closed = true;
    for (auto& n : s.nodes)
        n->conn.close();
    wake(s.map_ready);
    wake(s.refresh_timer);
}

const ClusterStats& RedisCluster::stats() const noexcept { return impl_->stats; }

const RedisEndpoint* RedisCluster::owner(std::uint16_t slot) const noexcept {
    const Impl& s = *impl_;
    if (slot >= s.owners.size() || s.owners[slot] == no_node) return nullptr;
    return &s.nodes[s.owners[slot]]->conn.endpoint();
}

const RedisConn* RedisCluster::node(std::string_view host, std::uint16_t port) const noexcept {
    for (const auto& n : impl_->nodes) {
        const RedisEndpoint& ep = n->conn.endpoint();
        if (ep.port == port && ep.host == host) return &n->conn;
    }
    return nullptr;
}

} // namespace sluice::cache
