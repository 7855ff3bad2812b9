/* main: placeholder until the module lands. */
int gw_placeholder_main(void);
int main(void) { return gw_placeholder_main(); }
int gw_placeholder_main(void) { return 0; }
