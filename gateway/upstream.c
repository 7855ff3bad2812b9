/* upstream: placeholder until the module lands. */
int gw_placeholder_upstream(void);
int gw_placeholder_upstream(void) { return 0; }
