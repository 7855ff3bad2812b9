/* config: placeholder until the module lands. */
int gw_placeholder_config(void);
int gw_placeholder_config(void) { return 0; }
