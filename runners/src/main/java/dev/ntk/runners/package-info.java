/** Runner wiring and defaults: DirectRunner (default) and FlinkRunner, embedded or on a cluster. */
package dev.ntk.runners;
