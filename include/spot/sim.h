/*
 * The simulated sensor drivers, one per vertical (src/device/sim/): the
 * "sim" driver of spotdevice and the sensors of spotsim's fleet. Every
 * value is a pure function of (seed, device index, field, period start),
 * so a series is reproducible for a given seed whatever the order or rate
 * it is sampled at. Design of the series: docs/device.md.
 */
#ifndef SPOT_SIM_H
#define SPOT_SIM_H

#include "spot/sensor.h"

extern const struct sensor_driver sim_aqo_driver;
extern const struct sensor_driver sim_nlo_driver;
extern const struct sensor_driver sim_wto_driver;
extern const struct sensor_driver sim_cfo_driver;
extern const struct sensor_driver sim_cfe_driver;
extern const struct sensor_driver sim_dev_driver;
extern const struct sensor_driver sim_dho_driver;

/* Default share of randomised MACs among simulated visitors. */
#define SIM_DEFAULT_RANDOM_MAC_SHARE 0.6
/* Default probability that a simulated field reads null in a period. */
#define SIM_DEFAULT_FAILURE_RATE 0.02

#endif
