// OpenSSL's libcrypto (Debian: libssl-dev) for the SHA-2 checksums of backup manifests.
#include <openssl/evp.h>
