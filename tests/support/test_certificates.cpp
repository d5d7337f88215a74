// Test support: a test CA, a server certificate it signed and an untrusted one (see
// test_certificates.hpp).
#include "test_certificates.hpp"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace tether::testing {
namespace fs = std::filesystem;

namespace {

constexpr const char* kNewKey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
// Both server certificates name the loopback address and localhost (clients check it).
constexpr const char* kServerNames = "subjectAltName=IP:127.0.0.1,DNS:localhost";

fs::path make_dir() {
  std::string pattern = (fs::temp_directory_path() / "tether-certs-XXXXXX").string();
  if (!::mkdtemp(pattern.data()))
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  return pattern;
}

}  // namespace

TestCertificates::TestCertificates() : dir_(make_dir()) {
  try {
    openssl("req -x509 " + std::string(kNewKey) +
            " -days 2 -subj /CN=tether-test-ca"
            " -addext basicConstraints=critical,CA:TRUE"
            " -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.pem");
    openssl("req -new " + std::string(kNewKey) +
            " -subj /CN=localhost -keyout server.key -out server.csr");
    std::ofstream(dir_ / "server.ext") << kServerNames
                                       << "\nbasicConstraints=CA:FALSE"
                                          "\nkeyUsage=critical,digitalSignature"
                                          "\nextendedKeyUsage=serverAuth\n";
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1"
        " -extfile server.ext -out server.pem");
    openssl("req -x509 " + std::string(kNewKey) + " -days 1 -subj /CN=localhost -addext " +
            kServerNames + " -keyout untrusted.key -out untrusted.pem");
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    throw;
  }
}

TestCertificates::~TestCertificates() {
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

// Runs `openssl <arguments>` in dir_.
void TestCertificates::openssl(const std::string& arguments) const {
  const std::string command =
      "cd '" + dir_.string() + "' && openssl " + arguments + " >/dev/null 2>openssl.err";
  if (std::system(command.c_str()) == 0) return;
  std::ifstream err(dir_ / "openssl.err");
  std::stringstream text;
  text << err.rdbuf();
  throw std::runtime_error("openssl " + arguments + " failed: " + text.str());
}

}  // namespace tether::testing
