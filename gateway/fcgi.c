/* fcgi: placeholder until the module lands. */
int gw_placeholder_fcgi(void);
int gw_placeholder_fcgi(void) { return 0; }
