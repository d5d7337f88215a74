// Test support: certificates for TLS tests, made with the openssl CLI into a fresh directory
// that is removed on destruction (also when the test fails).
//
// Owns: a test CA (self-signed, CA:true), a server certificate for 127.0.0.1 and localhost
// signed by that CA, and a separate self-signed certificate for the same names that nothing
// trusts. A client that trusts ca.pem accepts a server using server_cert(); the same client
// refuses one using untrusted_cert(). EC P-256 keys, valid for a day.
#pragma once

#include <filesystem>
#include <string>

namespace tether::testing {

class TestCertificates {
 public:
  // Throws when openssl fails (its stderr in the message).
  TestCertificates();
  ~TestCertificates();
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::string ca_cert() const { return file("ca.pem"); }
  std::string server_cert() const { return file("server.pem"); }
  std::string server_key() const { return file("server.key"); }
  std::string untrusted_cert() const { return file("untrusted.pem"); }
  std::string untrusted_key() const { return file("untrusted.key"); }

 private:
  std::string file(const char* name) const { return (dir_ / name).string(); }
  void openssl(const std::string& arguments) const;

  std::filesystem::path dir_;
};

}  // namespace tether::testing
