#include "tds_stream.hpp"

#include "sluice/protocol/tds/packet.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace sluice::tds {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
namespace ptds = protocol::tds;

BIO* bio(void* p) noexcept { return static_cast<BIO*>(p); }

std::string openssl_error() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "TLS failure" : out;
}

int select_tds8(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    static constexpr unsigned char want[] = {7, 't', 'd', 's', '/', '8', '.', '0'};
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, outlen, want, sizeof want, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

} // namespace

void accept_tds8_alpn(asio::ssl::context& ctx) {
    SSL_CTX_set_alpn_select_cb(ctx.native_handle(), select_tds8, nullptr);
}

TdsStream::~TdsStream() { drop_tls(); }

void TdsStream::drop_tls() noexcept {
    if (ssl_ != nullptr) SSL_free(ssl_); // frees both BIOs
    ssl_ = nullptr;
    in_bio_ = out_bio_ = nullptr;
}

void TdsStream::close() noexcept {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

asio::awaitable<error_code> TdsStream::read_raw(std::vector<std::uint8_t>& out) {
    if (!pending_.empty()) {
        out.insert(out.end(), pending_.begin(), pending_.end());
        pending_.clear();
        co_return error_code{};
    }
    std::uint8_t buf[16384];
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf), use_tuple);
    if (ec) co_return ec;
    out.insert(out.end(), buf, buf + n);
    co_return error_code{};
}

error_code TdsStream::decrypt_into(std::vector<std::uint8_t>& out) {
    std::uint8_t buf[16384];
    for (;;) {
        const int n = SSL_read(ssl_, buf, sizeof buf);
        if (n > 0) {
            out.insert(out.end(), buf, buf + n);
            continue;
        }
        const int err = SSL_get_error(ssl_, n);
        if (err == SSL_ERROR_WANT_READ) return {};
        if (err == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
        tls_error_ = openssl_error();
        return asio::error::make_error_code(asio::error::connection_aborted);
    }
}

asio::awaitable<error_code> TdsStream::read_some(std::vector<std::uint8_t>& out) {
    if (ssl_ == nullptr) co_return co_await read_raw(out);
    if (!plain_pending_.empty()) {
        out.insert(out.end(), plain_pending_.begin(), plain_pending_.end());
        plain_pending_.clear();
        co_return error_code{};
    }
    const std::size_t before = out.size();
    while (out.size() == before) {
        raw_.clear();
        const error_code ec = co_await read_raw(raw_);
        if (ec) co_return ec;
        BIO_write(bio(in_bio_), raw_.data(), static_cast<int>(raw_.size()));
        const error_code dec = decrypt_into(out);
        if (dec) co_return dec;
    }
    co_return error_code{};
}

asio::awaitable<error_code> TdsStream::write(Bytes data) {
    if (ssl_ == nullptr) {
        auto [ec, n] =
            co_await asio::async_write(socket_, asio::buffer(data.data(), data.size()), use_tuple);
        co_return ec;
    }
    // One TLS record per call: TDS peers expect a packet per record.
    std::size_t done = 0;
    while (done < data.size()) {
        const int n = SSL_write(ssl_, data.data() + done, static_cast<int>(data.size() - done));
        if (n <= 0) {
            tls_error_ = openssl_error();
            co_return asio::error::make_error_code(asio::error::connection_aborted);
        }
        done += static_cast<std::size_t>(n);
    }
    co_return co_await flush_tls_output(false);
}

asio::awaitable<error_code> TdsStream::flush_tls_output(bool wrap_in_prelogin) {
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(BIO_ctrl_pending(bio(out_bio_))));
    if (bytes.empty()) co_return error_code{};
    BIO_read(bio(out_bio_), bytes.data(), static_cast<int>(bytes.size()));
    if (wrap_in_prelogin) {
        std::vector<std::uint8_t> wrapped;
        ptds::write_message(ptds::PacketType::prelogin, 0, bytes, 4096, 1, wrapped);
        bytes = std::move(wrapped);
    }
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes), use_tuple);
    co_return ec;
}

asio::awaitable<error_code> TdsStream::handshake_in_prelogin(asio::ssl::context& ctx, bool server,
                                                             std::string server_name) {
    ssl_ = SSL_new(ctx.native_handle());
    if (ssl_ == nullptr) {
        tls_error_ = openssl_error();
        co_return asio::error::make_error_code(asio::error::no_memory);
    }
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in, out);
    in_bio_ = in;
    out_bio_ = out;
    // TDS 7.x carries TLS up to 1.2 (TLS 1.3 came with TDS 8.0), and a TLS 1.3 server's
    // session tickets would follow the handshake outside its PRELOGIN wrapping.
    SSL_set_max_proto_version(ssl_, TLS1_2_VERSION);
    if (server) {
        SSL_set_accept_state(ssl_);
    } else {
        SSL_set_connect_state(ssl_);
        if (!server_name.empty())
            SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     server_name.data());
    }
    // The handshake's records travel inside PRELOGIN messages, so they are read here as
    // messages, with TLS not yet applied to the stream.
    ssl_st* const handshaking = ssl_;
    ssl_ = nullptr;
    ptds::MessageAssembler assembler(32768, 1 << 20);
    std::vector<std::uint8_t> buf;
    for (;;) {
        const int r = SSL_do_handshake(handshaking);
        const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(handshaking, r);
        ssl_ = handshaking;
        const error_code wec = co_await flush_tls_output(true);
        ssl_ = nullptr;
        if (wec) {
            SSL_free(handshaking);
            in_bio_ = out_bio_ = nullptr;
            co_return wec;
        }
        if (err == SSL_ERROR_NONE) break;
        if (err != SSL_ERROR_WANT_READ) {
            tls_error_ = openssl_error();
            SSL_free(handshaking);
            in_bio_ = out_bio_ = nullptr;
            co_return asio::error::make_error_code(asio::error::connection_aborted);
        }
        // The peer's next flight: one message.
        assembler.reset();
        while (!assembler.complete()) {
            if (buf.empty()) {
                const error_code ec = co_await read_raw(buf);
                if (ec) {
                    SSL_free(handshaking);
                    in_bio_ = out_bio_ = nullptr;
                    co_return ec;
                }
            }
            auto used = assembler.feed(buf);
            if (!used) {
                tls_error_ = "bad TDS packet during the TLS handshake";
                SSL_free(handshaking);
                in_bio_ = out_bio_ = nullptr;
                co_return used.error();
            }
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*used));
        }
        const auto msg = assembler.message();
        if (msg.type != static_cast<std::uint8_t>(ptds::PacketType::prelogin) &&
            msg.type != static_cast<std::uint8_t>(ptds::PacketType::tabular_result)) {
            tls_error_ = "expected a TLS handshake inside PRELOGIN";
            SSL_free(handshaking);
            in_bio_ = out_bio_ = nullptr;
            co_return asio::error::make_error_code(asio::error::connection_aborted);
        }
        BIO_write(in, msg.payload.data(), static_cast<int>(msg.payload.size()));
    }
    ssl_ = handshaking;
    // Bytes read past the last handshake message are TLS records already.
    if (!buf.empty()) {
        BIO_write(in, buf.data(), static_cast<int>(buf.size()));
        const error_code dec = decrypt_into(plain_pending_);
        if (dec) co_return dec;
    }
    co_return error_code{};
}

asio::awaitable<error_code> TdsStream::handshake_direct(asio::ssl::context& ctx, bool server) {
    ssl_ = SSL_new(ctx.native_handle());
    if (ssl_ == nullptr) co_return asio::error::make_error_code(asio::error::no_memory);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in, out);
    in_bio_ = in;
    out_bio_ = out;
    if (server) {
        SSL_set_accept_state(ssl_);
    } else {
        SSL_set_connect_state(ssl_);
        static constexpr unsigned char alpn[] = {7, 't', 'd', 's', '/', '8', '.', '0'};
        SSL_set_alpn_protos(ssl_, alpn, sizeof alpn);
    }
    std::vector<std::uint8_t> buf;
    for (;;) {
        const int r = SSL_do_handshake(ssl_);
        const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
        const error_code wec = co_await flush_tls_output(false);
        if (wec) co_return wec;
        if (err == SSL_ERROR_NONE) break;
        if (err != SSL_ERROR_WANT_READ) {
            tls_error_ = openssl_error();
            co_return asio::error::make_error_code(asio::error::connection_aborted);
        }
        buf.clear();
        const error_code ec = co_await read_raw(buf);
        if (ec) co_return ec;
        BIO_write(in, buf.data(), static_cast<int>(buf.size()));
    }
    // Records that came with the peer's last handshake flight (a TLS 1.3 client's first
    // message may share its Finished's segment) are in OpenSSL already.
    co_return decrypt_into(plain_pending_);
}

} // namespace sluice::tds
