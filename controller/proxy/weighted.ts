import type { Track } from '../targets/types.js';

/**
 * Smooth weighted round robin (as nginx does) between the two tracks: deterministic, and over any run of
 * 100 consecutive picks the canary gets exactly `canaryWeight` of them, so the split has no variance.
 */
export class TrackSplitter {
  private canaryWeight = 0;
  private stableCurrent = 0;
  private canaryCurrent = 0;

  get weight(): number {
    return this.canaryWeight;
  }

  setWeight(canaryWeight: number): void {
    if (!Number.isInteger(canaryWeight) || canaryWeight < 0 || canaryWeight > 100) {
      throw new RangeError(`canary weight must be an integer from 0 to 100, got ${canaryWeight}`);
    }
    if (canaryWeight === this.canaryWeight) return;
    this.canaryWeight = canaryWeight;
    this.stableCurrent = 0;
    this.canaryCurrent = 0;
  }

  next(): Track {
    const canary = this.canaryWeight;
    if (canary === 0) return 'stable';
    if (canary === 100) return 'canary';
    this.stableCurrent += 100 - canary;
    this.canaryCurrent += canary;
    if (this.canaryCurrent > this.stableCurrent) {
      this.canaryCurrent -= 100;
      return 'canary';
    }
    this.stableCurrent -= 100;
    return 'stable';
  }
}
