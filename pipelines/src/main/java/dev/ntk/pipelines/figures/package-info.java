/**
 * The paper's figures as PNG files, drawn headless with XChart: {@link
 * dev.ntk.pipelines.figures.Figures} draws line charts with shaded two-sigma bands and scatter
 * points; {@link dev.ntk.pipelines.figures.Figure1} draws Figure 1 of the Neural Tangents paper
 * (NNGP and NTK posteriors on the sine task, beside trained finite networks) and {@link
 * dev.ntk.pipelines.figures.Figure2} its Figure 2 (Monte Carlo kernels of finite networks
 * converging to the analytic ones over samples and widths); each writes its data as {@code .npy}
 * files beside the picture.
 */
package dev.ntk.pipelines.figures;
