/* fields: placeholder until the module lands. */
int gw_placeholder_fields(void);
int gw_placeholder_fields(void) { return 0; }
