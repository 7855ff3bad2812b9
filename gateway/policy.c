/* policy: placeholder until the module lands. */
int gw_placeholder_policy(void);
int gw_placeholder_policy(void) { return 0; }
