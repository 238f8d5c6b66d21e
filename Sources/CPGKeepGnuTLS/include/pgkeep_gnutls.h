#ifndef PGKEEP_GNUTLS_H
#define PGKEEP_GNUTLS_H
// GnuTLS's question to the program that loads it: skip the implicit initialisation? Yes (1).
// See gnutls_skip.c.
int _gnutls_global_init_skip(void);

#endif
