/* translate: placeholder until the module lands. */
int gw_placeholder_translate(void);
int gw_placeholder_translate(void) { return 0; }
