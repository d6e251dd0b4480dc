// A chart drawn by uPlot (the small canvas chart library of Grafana's time-series panels): a line over days, or
// bars over named categories. Resized with its container; destroyed with the component.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export function Chart(props: {
  title: string;
  x: number[]; // seconds since the epoch (line), or 0..n-1 (bars)
  y: (number | null)[];
  label: string;
  categories?: string[]; // bars: the name under each
  xRange?: [number, number]; // the period shown, whatever days have data
  yRange?: [number, number];
  testId: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = host.current!;
    const bars = Boolean(props.categories);
    const options: uPlot.Options = {
      title: props.title,
      width: Math.max(element.clientWidth, 300),
      height: 220,
      scales: {
        x: props.xRange ? { time: !bars, range: props.xRange } : { time: !bars },
        y: props.yRange ? { range: props.yRange } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        bars
          ? { values: (_u, ticks) => ticks.map((t) => props.categories?.[Math.round(t)] ?? ""), space: 40 }
          : {},
        {},
      ],
      series: [
        {},
        bars
          ? { label: props.label, stroke: "#b3261e", fill: "#fce8e6", paths: uPlot.paths.bars!({ size: [0.6, 60] }) }
          : { label: props.label, stroke: "#1a5fd0", width: 2, points: { show: true } },
      ],
    };
    const chart = new uPlot(options, [props.x, props.y], element);
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 300), height: 220 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [props.title, props.x, props.y, props.label, props.categories, props.xRange, props.yRange]);
  return <div className="chart" data-testid={props.testId} ref={host} />;
}
