/* cred: placeholder until the module lands. */
int gw_placeholder_cred(void);
int gw_placeholder_cred(void) { return 0; }
