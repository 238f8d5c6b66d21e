// GnuTLS initialises itself when it is loaded, in a constructor that runs before main: it reads
// its system configuration, sets up its random generator and its crypto back-ends. pgkeep never
// calls GnuTLS. Debian's libpq5 loads it only through libldap (for LDAP lookups of connection
// parameters in pg_service.conf), and that start-up work made 0.7 MB of every pgkeep command's
// resident set (GnuTLS's own pages, 0.6 MB, and the heap it allocated).
//
// GnuTLS asks the program first: its constructor calls _gnutls_global_init_skip(), a weak symbol
// a program may define to skip the implicit initialisation (gnutls.h's GNUTLS_SKIP_GLOBAL_INIT).
// The pgkeep executable defines it and exports it (Package.swift), so the dynamic linker binds
// GnuTLS's call here. Nothing is lost: libldap calls gnutls_global_init() itself before its
// first TLS connection (OpenLDAP's tls_g.c, tlsg_init), which initialises GnuTLS then.
//
// Linked into the pgkeep executable only: never into the Bacula plugin, which lives inside
// bacula-fd, a program of its own.
#include "pgkeep_gnutls.h"

int _gnutls_global_init_skip(void) {
    return 1;
}
