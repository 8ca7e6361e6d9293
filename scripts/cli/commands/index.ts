import type { Command } from '../command.ts';
import arp from './arp.ts';
import capture from './capture.ts';
import down from './down.ts';
import fault from './fault.ts';
import http from './http.ts';
import init from './init.ts';
import ip from './ip.ts';
import kill from './kill.ts';
import nc from './nc.ts';
import perf from './perf.ts';
import ping from './ping.ts';
import pingall from './pingall.ts';
import rvi from './rvi.ts';
import route from './route.ts';
import ss from './ss.ts';
import start from './start.ts';
import status from './status.ts';
import supervise from './supervise.ts';
import svc from './svc.ts';
import tap from './tap.ts';
import up from './up.ts';
import vlan from './vlan.ts';

/**
 * Every verb of `lparlab`, in the order `lparlab --help` lists them. A new
 * verb is a module in this folder exporting a Command, plus its line here.
 */
export const COMMANDS: readonly Command[] = [up, init, down, status, kill, start, fault, svc, rvi, perf, ping, pingall, arp, ip, route, capture, vlan, tap, nc, http, ss, supervise] as unknown as Command[];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}
