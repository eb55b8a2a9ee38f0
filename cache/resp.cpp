#include "sluice/cache/resp.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <hiredis/read.h>
#include <new>
#include <string>
#include <utility>

namespace sluice::cache {
namespace {

class CacheCategory final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sluice.cache"; }
    std::string message(int ev) const override {
        switch (static_cast<cache_errc>(ev)) {
        case cache_errc::malformed:
            return "malformed RESP reply from Redis";
        case cache_errc::oversized:
            return "Redis reply larger than the allowed maximum";
        case cache_errc::out_of_memory:
            return "out of memory while reading a Redis reply";
        }
        return "unknown cache error";
    }
};

void append(std::vector<std::uint8_t>& out, std::string_view s) {
    out.insert(out.end(), s.begin(), s.end());
}

void append_header(std::vector<std::uint8_t>& out, char type, std::size_t n) {
    std::array<char, 24> buf{};
    buf[0] = type;
    auto [end, ec] = std::to_chars(buf.data() + 1, buf.data() + buf.size() - 2, n);
    assert(ec == std::errc{}); // 20 digits hold any 64-bit size
    *end++ = '\r';
    *end++ = '\n';
    append(out, std::string_view(buf.data(), static_cast<std::size_t>(end - buf.data())));
}

template <class Args> void write_args(std::vector<std::uint8_t>& out, const Args& args) {
    assert(args.size() > 0); // Redis has no empty command
    std::size_t size = 16;
    for (std::string_view a : args)
        size += a.size() + 16;
    out.reserve(out.size() + size);
    append_header(out, '*', args.size());
    for (std::string_view a : args) {
        append_header(out, '$', a.size());
        append(out, a);
        append(out, "\r\n");
    }
}

} // namespace

const boost::system::error_category& cache_category() noexcept {
    static const CacheCategory category;
    return category;
}

void write_command(std::vector<std::uint8_t>& out, std::initializer_list<std::string_view> args) {
    write_args(out, args);
}

void write_command(std::vector<std::uint8_t>& out, std::span<const std::string_view> args) {
    write_args(out, args);
}

// ---- reader ----

// hiredis calls the functions below from C while it parses; they build Reply values in place
// and must not throw through it. Returning nullptr makes hiredis fail the reader (it reports
// "out of memory" and frees the partial reply through free_reply); the real reason is kept in
// State::refusal. Building Reply directly, rather than converting hiredis's own redisReply
// afterwards, saves a second allocation and copy of every string and a walk of every reply.
struct ReplyReader::State {
    ReaderLimits limits;
    redisReader* reader = nullptr;
    error_code refusal; ///< why a reply function refused, set before it returns nullptr
    error_code failure; ///< set once next() failed; returned from then on

    explicit State(ReaderLimits l) : limits(l) {}
    ~State() {
        if (reader) redisReaderFree(reader);
    }
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    static State& of(const redisReadTask* task) { return *static_cast<State*>(task->privdata); }

    // Hands a new value to hiredis: a root reply is allocated on its own (hiredis keeps it
    // and next() takes it back); an element is appended to its parent's array, which hiredis
    // fills in order. The pointer to an element stays valid while it is filled: its parent
    // only grows again after this element (and everything inside it) is complete.
    static void* place(const redisReadTask* task, Reply&& value) noexcept {
        try {
            if (task->parent == nullptr) return new Reply(std::move(value));
            auto* parent = static_cast<Reply*>(task->parent->obj);
            assert(parent && parent->kind == ReplyKind::array);
            assert(static_cast<std::size_t>(task->idx) == parent->elements.size());
            parent->elements.push_back(std::move(value));
            return &parent->elements.back();
        } catch (const std::bad_alloc&) {
            of(task).refusal = cache_errc::out_of_memory;
            return nullptr;
        }
    }

    static void* refuse(const redisReadTask* task, cache_errc why) noexcept {
        of(task).refusal = why;
        return nullptr;
    }

    static void* create_string(const redisReadTask* task, char* str, std::size_t len) noexcept {
        const State& self = of(task);
        Reply r;
        switch (task->type) {
        case REDIS_REPLY_STRING:
            if (len > self.limits.max_bulk) return refuse(task, cache_errc::oversized);
            // hiredis 0.14 skips the two bytes after the payload without looking at them
            // (it has made sure they are buffered): a wrong length must not go unnoticed.
            if (str[len] != '\r' || str[len + 1] != '\n')
                return refuse(task, cache_errc::malformed);
            r.kind = ReplyKind::bulk;
            break;
        case REDIS_REPLY_STATUS:
        case REDIS_REPLY_ERROR:
            if (len > self.limits.max_line) return refuse(task, cache_errc::oversized);
            r.kind = task->type == REDIS_REPLY_STATUS ? ReplyKind::status : ReplyKind::error;
            break;
        default:
            return refuse(task, cache_errc::malformed);
        }
        try {
            r.str.assign(str, len);
        } catch (const std::bad_alloc&) {
            return refuse(task, cache_errc::out_of_memory);
        }
        return place(task, std::move(r));
    }

    static void* create_array(const redisReadTask* task, int elements) noexcept {
        // hiredis 0.14 has already refused counts below -1 and above INT_MAX.
        if (elements < 0) return refuse(task, cache_errc::malformed);
        if (static_cast<std::size_t>(elements) > of(task).limits.max_elements)
            return refuse(task, cache_errc::oversized);
        Reply r;
        r.kind = ReplyKind::array;
        try {
            // Reserve no more than a small part of what the header announces: the elements
            // are only paid for as their bytes arrive.
            r.elements.reserve(std::min(static_cast<std::size_t>(elements), std::size_t{64}));
        } catch (const std::bad_alloc&) {
            return refuse(task, cache_errc::out_of_memory);
        }
        return place(task, std::move(r));
    }

    static void* create_integer(const redisReadTask* task, long long value) noexcept {
        Reply r;
        r.kind = ReplyKind::integer;
        r.integer = value;
        return place(task, std::move(r));
    }

    static void* create_nil(const redisReadTask* task) noexcept { return place(task, Reply{}); }

    // hiredis frees only root replies this way (the partial reply of a failed or freed
    // reader); elements belong to their parent.
    static void free_reply(void* reply) noexcept { delete static_cast<Reply*>(reply); }

    static redisReplyObjectFunctions functions;

    // After hiredis stopped for want of bytes: the item it waits for must fit the limits even
    // before its bytes arrive. The hiredis 0.14 reader keeps its task stack in rstack[], the
    // innermost at ridx; a task's type is set once its type byte is consumed, and r->pos then
    // points at the rest of its line.
    error_code check_pending() const noexcept {
        if (reader->ridx < 0) return {};
        const redisReadTask& task = reader->rstack[reader->ridx];
        if (task.type < 0) return {}; // not even the type byte yet
        const std::string_view rest(reader->buf + reader->pos, reader->len - reader->pos);
        const std::size_t eol = rest.find("\r\n");
        if (eol == std::string_view::npos) {
            // The line may end in the CR of its CRLF, the LF still to come.
            const bool cr_last = !rest.empty() && rest.back() == '\r';
            if (rest.size() - (cr_last ? 1 : 0) > limits.max_line) return cache_errc::oversized;
            return {};
        }
        // A complete line here is the header of a bulk string whose payload is still to come
        // (hiredis has already checked it is a number from -1 up); other lines it consumes.
        if (task.type != REDIS_REPLY_STRING) return {};
        std::uint64_t n = 0;
        auto [p, ec] = std::from_chars(rest.data(), rest.data() + eol, n);
        if (ec == std::errc::result_out_of_range || (ec == std::errc{} && n > limits.max_bulk))
            return cache_errc::oversized;
        return {};
    }
};

redisReplyObjectFunctions ReplyReader::State::functions = {
    &create_string, &create_array, &create_integer, &create_nil, &free_reply,
};

ReplyReader::ReplyReader(ReaderLimits limits) : state_(std::make_unique<State>(limits)) {
    state_->reader = redisReaderCreateWithFunctions(&State::functions);
    if (!state_->reader) throw std::bad_alloc();
    // Each task hiredis starts is given this pointer, which the reply functions read.
    state_->reader->privdata = state_.get();
}

ReplyReader::~ReplyReader() = default;
ReplyReader::ReplyReader(ReplyReader&&) noexcept = default;
ReplyReader& ReplyReader::operator=(ReplyReader&&) noexcept = default;

void ReplyReader::feed(Bytes bytes) {
    if (failed() || bytes.empty()) return;
    // A refusal here (the reader already failed, or no memory) is seen by the next next().
    redisReaderFeed(state_->reader, reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

result<std::optional<Reply>> ReplyReader::next() {
    State& s = *state_;
    if (s.failure) return s.failure;
    void* raw = nullptr;
    if (redisReaderGetReply(s.reader, &raw) != REDIS_OK) {
        if (s.refusal)
            s.failure = s.refusal;
        else if (s.reader->err == REDIS_ERR_OOM)
            s.failure = cache_errc::out_of_memory;
        else // REDIS_ERR_PROTOCOL: a bad type byte or number, or more than 8 nested arrays
            s.failure = cache_errc::malformed;
        return s.failure;
    }
    if (raw) {
        const std::unique_ptr<Reply> root(static_cast<Reply*>(raw));
        return std::optional<Reply>(std::move(*root));
    }
    if (auto ec = s.check_pending()) {
        s.failure = ec;
        return ec;
    }
    return std::optional<Reply>{};
}

bool ReplyReader::failed() const noexcept { return state_ && state_->failure; }

// ---- Redis Cluster ----

namespace {

bool read_number(std::string_view s, std::uint64_t max, std::uint64_t& out) {
    if (s.empty() || s.size() > 5) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size() && out <= max;
}

} // namespace

std::optional<Redirect> parse_redirect(const Reply& reply) {
    if (reply.kind != ReplyKind::error) return std::nullopt;
    std::string_view rest = reply.str;
    Redirect r;
    if (rest.starts_with("MOVED ")) {
        r.kind = Redirect::Kind::moved;
        rest.remove_prefix(6);
    } else if (rest.starts_with("ASK ")) {
        r.kind = Redirect::Kind::ask;
        rest.remove_prefix(4);
    } else {
        return std::nullopt;
    }
    const std::size_t space = rest.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    std::uint64_t slot = 0;
    if (!read_number(rest.substr(0, space), 16383, slot)) return std::nullopt;
    const std::string_view endpoint = rest.substr(space + 1);
    const std::size_t colon = endpoint.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::uint64_t port = 0;
    if (!read_number(endpoint.substr(colon + 1), 65535, port) || port == 0) return std::nullopt;
    const std::string_view host = endpoint.substr(0, colon);
    if (host.find(' ') != std::string_view::npos) return std::nullopt;
    r.slot = static_cast<std::uint16_t>(slot);
    r.port = static_cast<std::uint16_t>(port);
    r.host.assign(host);
    return r;
}

bool is_moved(const Reply& reply) {
    auto r = parse_redirect(reply);
    return r && r->kind == Redirect::Kind::moved;
}

bool is_ask(const Reply& reply) {
    auto r = parse_redirect(reply);
    return r && r->kind == Redirect::Kind::ask;
}

namespace {

constexpr std::array<std::uint16_t, 256> crc16_table = [] {
    std::array<std::uint16_t, 256> t{};
    for (unsigned i = 0; i < 256; ++i) {
        unsigned crc = i << 8;
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
        t[i] = static_cast<std::uint16_t>(crc);
    }
    return t;
}();

} // namespace

std::uint16_t crc16(std::string_view bytes) noexcept {
    std::uint16_t crc = 0;
    for (char c : bytes) {
        const auto index = static_cast<std::uint8_t>((crc >> 8) ^ static_cast<std::uint8_t>(c));
        crc = static_cast<std::uint16_t>((crc << 8) ^ crc16_table[index]);
    }
    return crc;
}

std::uint16_t key_slot(std::string_view key) noexcept {
    const std::size_t open = key.find('{');
    if (open != std::string_view::npos) {
        const std::size_t close = key.find('}', open + 1);
        // An empty tag ("{}") does not count: the whole key is hashed.
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16(key) & 16383);
}

} // namespace sluice::cache
