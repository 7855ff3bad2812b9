/* pipeline: placeholder until the module lands. */
int gw_placeholder_pipeline(void);
int gw_placeholder_pipeline(void) { return 0; }
