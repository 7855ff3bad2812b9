/* jwtv: placeholder until the module lands. */
int gw_placeholder_jwtv(void);
int gw_placeholder_jwtv(void) { return 0; }
