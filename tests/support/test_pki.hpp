// A throwaway certificate authority for TLS integration tests.
//
// Every key and certificate is generated in memory when the test runs (EC P-256, so it takes
// milliseconds); nothing secret is ever committed to the repository.
#pragma once

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace herald::test {

struct pem_pair {
    std::string cert_pem{}; // "-----BEGIN CERTIFICATE-----"
    std::string key_pem{};  // "-----BEGIN PRIVATE KEY-----" (PKCS#8, unencrypted)
};

namespace pki_detail {

template <auto Free>
struct deleter {
    template <class T>
    void operator()(T* p) const noexcept {
        Free(p);
    }
};

using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509_free>>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION_free>>;
using bignum_ptr = std::unique_ptr<BIGNUM, deleter<BN_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO_free_all>>;

// Throws with the text of every queued OpenSSL error (and clears the queue).
[[noreturn]] inline void fail(char const* what) {
    std::string message = std::string("test_pki: ") + what;
    for (unsigned long code = ERR_get_error(); code != 0; code = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        message += "; ";
        message += text;
    }
    throw std::runtime_error(message);
}

inline void check(bool ok, char const* what) {
    if (!ok) {
        fail(what);
    }
}

inline pkey_ptr make_key() {
    pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    check(key != nullptr, "EVP_PKEY_Q_keygen(EC, P-256)");
    return key;
}

inline std::string to_pem(X509* cert) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
    char* data = nullptr;
    long const size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

inline std::string to_pem(EVP_PKEY* key) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr &&
              PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
    char* data = nullptr;
    long const size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

inline void add_name_entry(X509_NAME* name, char const* field, std::string const& value) {
    check(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                     reinterpret_cast<unsigned char const*>(value.c_str()), -1, -1,
                                     0) == 1,
          "X509_NAME_add_entry_by_txt");
}

struct extension {
    int nid{};
    std::string value{}; // openssl.cnf syntax, e.g. "critical,CA:TRUE"
};

// A v3 certificate for `subject_key`, signed by `issuer_key`. `issuer` is the issuing certificate,
// or nullptr for a self-signed one (then `issuer_key` must be the private half of `subject_key`).
inline x509_ptr make_certificate(std::string const& common_name, EVP_PKEY* subject_key,
                                 X509* issuer, EVP_PKEY* issuer_key,
                                 std::chrono::seconds not_before, std::chrono::seconds not_after,
                                 std::vector<extension> const& extensions) {
    x509_ptr cert(X509_new());
    check(cert != nullptr, "X509_new");
    check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");

    // 159 random bits with the top one set: positive, non-zero and at most 20 octets (RFC 5280).
    bignum_ptr serial(BN_new());
    check(serial != nullptr && BN_rand(serial.get(), 159, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1,
          "BN_rand");
    check(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr,
          "BN_to_ASN1_INTEGER");

    check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(not_before.count())) !=
              nullptr,
          "X509_gmtime_adj(notBefore)");
    check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(not_after.count())) !=
              nullptr,
          "X509_gmtime_adj(notAfter)");

    X509_NAME* subject = X509_get_subject_name(cert.get());
    add_name_entry(subject, "O", "herald tests");
    add_name_entry(subject, "CN", common_name);
    check(X509_set_issuer_name(cert.get(),
                               issuer != nullptr ? X509_get_subject_name(issuer) : subject) == 1,
          "X509_set_issuer_name");
    check(X509_set_pubkey(cert.get(), subject_key) == 1, "X509_set_pubkey");

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    for (auto const& ext : extensions) {
        extension_ptr made(X509V3_EXT_conf_nid(nullptr, &ctx, ext.nid, ext.value.c_str()));
        check(made != nullptr, OBJ_nid2sn(ext.nid));
        check(X509_add_ext(cert.get(), made.get(), -1) == 1, "X509_add_ext");
    }

    check(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "X509_sign");
    return cert;
}

// "DNS:a,DNS:b,IP:127.0.0.1"; empty if there are no names.
inline std::string subject_alt_names(std::vector<std::string> const& dns_names,
                                     std::vector<std::string> const& ip_sans) {
    std::string out;
    auto const append = [&](char const* kind, std::string const& value) {
        if (value.empty() || value.find_first_of(",\n") != std::string::npos) {
            throw std::invalid_argument("test_pki: unusable subjectAltName '" + value + "'");
        }
        if (!out.empty()) {
            out += ',';
        }
        out += kind;
        out += value;
    };
    for (auto const& name : dns_names) {
        append("DNS:", name);
    }
    for (auto const& ip : ip_sans) {
        append("IP:", ip);
    }
    return out;
}

} // namespace pki_detail

class test_pki {
public:
    // A self-signed CA ("herald test CA"), valid from now-1d to now+1d.
    test_pki()
        : ca_key_(pki_detail::make_key()) {
        using namespace std::chrono_literals;
        ca_cert_ = pki_detail::make_certificate("herald test CA", ca_key_.get(), nullptr,
                                                ca_key_.get(), -24h, 24h,
                                                {
                                                    {NID_basic_constraints, "critical,CA:TRUE"},
                                                    {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                                    {NID_subject_key_identifier, "hash"},
                                                });
        ca_pem_ = pki_detail::to_pem(ca_cert_.get());
    }

    test_pki(test_pki const&) = delete;
    test_pki& operator=(test_pki const&) = delete;

    ~test_pki() {
        if (!ca_file_.empty()) {
            ::unlink(ca_file_.c_str());
        }
    }

    // The CA certificate (PEM).
    std::string const& ca_pem() const { return ca_pem_; }

    // A server certificate signed by this CA for the given DNS names and IP addresses
    // (subjectAltName), valid from now+not_before to now+not_after. CN is the first name.
    // Expired: issue({"localhost"}, {"127.0.0.1"}, -48h, -24h).
    pem_pair issue(std::vector<std::string> dns_names, std::vector<std::string> ip_sans,
                   std::chrono::seconds not_before = std::chrono::hours(-1),
                   std::chrono::seconds not_after = std::chrono::hours(24)) const {
        return leaf(dns_names, ip_sans, ca_cert_.get(), ca_key_.get(), not_before, not_after);
    }

    // Same shape as issue(), valid now-1h .. now+1d, but self-signed: no CA vouches for it.
    pem_pair self_signed(std::vector<std::string> dns_names,
                         std::vector<std::string> ip_sans) const {
        return leaf(dns_names, ip_sans, nullptr, nullptr, std::chrono::hours(-1),
                    std::chrono::hours(24));
    }

    // Writes the CA PEM to a temporary file on first use and returns its path; the same path
    // afterwards. The file is removed by the destructor.
    std::string ca_file() const {
        std::lock_guard lock(file_mutex_);
        if (!ca_file_.empty()) {
            return ca_file_;
        }
        std::string path =
            (std::filesystem::temp_directory_path() / "herald-test-ca-XXXXXX.pem").string();
        int const fd = ::mkstemps(path.data(), 4);
        if (fd < 0) {
            throw std::runtime_error("test_pki: mkstemps(" + path + "): " + std::strerror(errno));
        }
        std::size_t written = 0;
        while (written < ca_pem_.size()) {
            auto const n = ::write(fd, ca_pem_.data() + written, ca_pem_.size() - written);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                int const error = errno;
                ::close(fd);
                ::unlink(path.c_str());
                throw std::runtime_error("test_pki: write(" + path + "): " + std::strerror(error));
            }
            written += static_cast<std::size_t>(n);
        }
        ::close(fd);
        ca_file_ = std::move(path);
        return ca_file_;
    }

private:
    // Signed by (issuer, issuer_key), or self-signed when issuer is nullptr.
    static pem_pair leaf(std::vector<std::string> const& dns_names,
                         std::vector<std::string> const& ip_sans, X509* issuer,
                         EVP_PKEY* issuer_key, std::chrono::seconds not_before,
                         std::chrono::seconds not_after) {
        std::string const common_name = !dns_names.empty() ? dns_names.front()
                                        : !ip_sans.empty() ? ip_sans.front()
                                                           : std::string("herald test server");
        std::vector<pki_detail::extension> extensions{
            {NID_basic_constraints, "CA:FALSE"},
            {NID_key_usage, "critical,digitalSignature"},
            {NID_ext_key_usage, "serverAuth"},
            {NID_subject_key_identifier, "hash"},
        };
        if (issuer != nullptr) {
            extensions.push_back({NID_authority_key_identifier, "keyid:always"});
        }
        std::string const alt_names = pki_detail::subject_alt_names(dns_names, ip_sans);
        if (!alt_names.empty()) {
            extensions.push_back({NID_subject_alt_name, alt_names});
        }

        pki_detail::pkey_ptr const key = pki_detail::make_key();
        pki_detail::x509_ptr const cert = pki_detail::make_certificate(
            common_name, key.get(), issuer, issuer != nullptr ? issuer_key : key.get(), not_before,
            not_after, extensions);
        return {pki_detail::to_pem(cert.get()), pki_detail::to_pem(key.get())};
    }

    pki_detail::pkey_ptr ca_key_;
    pki_detail::x509_ptr ca_cert_;
    std::string ca_pem_;

    mutable std::mutex file_mutex_;
    mutable std::string ca_file_;
};

} // namespace herald::test
