"""GeoJSON/KML import and export: every bad feature named with its reason, nothing half-imported, and a
fence drawn on a Chinese map lands where it was drawn."""

from __future__ import annotations

import json
import warnings
from datetime import date

import prcoords
import pytest
import shapely

from geofences.geojson import FenceImportError, dump_fences, load_fences
from geofences.kinds import Crs, FenceKind, ShapeKind
from geofences.local import transform_geometry_to_xy

FUTIAN_BBOX = (113.9, 22.45, 114.2, 22.65)
# a WGS-84 site near the Futian civic centre, as surveyed
SITE_WGS84 = [(114.0550, 22.5410), (114.0610, 22.5412), (114.0608, 22.5460), (114.0552, 22.5458), (114.0550, 22.5410)]


def feature(fid, geometry, **props) -> dict:
    return {"type": "Feature", "properties": {"id": fid, **props}, "geometry": geometry}


def poly(coords) -> dict:
    return {"type": "Polygon", "coordinates": [list(map(list, coords))]}


def fc(*features) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


GOOD = [
    feature("site-1", poly(SITE_WGS84), name="福田工地", kind="construction_site", company="深建", district="福田",
            valid_from="2024-06-01", valid_to="2024-12-31", windows=["22:00-06:00", "12:00-13:30"],
            tags={"permit": "P-1"}, version=3),
    feature("cp-1", {"type": "Point", "coordinates": [114.05, 22.54]}, kind="collection_point", radius_m=25),
    feature("route-1", {"type": "LineString", "coordinates": [[114.05, 22.54], [114.07, 22.55]]}, kind="route",
            half_width_m=50),
]


def test_schema_and_round_trip() -> None:
    fences = load_fences(fc(*GOOD))
    site, cp, route = fences
    assert (site.name, site.kind, site.shape, site.company, site.district) == (
        "福田工地", FenceKind.CONSTRUCTION_SITE, ShapeKind.POLYGON, "深建", "福田")
    assert (site.valid_from, site.valid_to, site.windows) == (date(2024, 6, 1), date(2024, 12, 31), ((1320, 360), (720, 810)))
    assert site.tags == {"permit": "P-1"} and site.version == 3
    assert (cp.shape, cp.radius_m, route.shape, route.half_width_m) == (ShapeKind.CIRCLE, 25.0, ShapeKind.CORRIDOR, 50.0)
    assert load_fences(json.dumps(dump_fences(fences))) == fences  # text source, exact round trip in WGS-84


def test_file_sources(tmp_path) -> None:
    path = tmp_path / "f.geojson"
    path.write_text(json.dumps(fc(*GOOD)), encoding="utf-8")
    assert len(load_fences(path)) == 3 and len(load_fences(str(path))) == 3


def _wgs_to(crs: str, coords):
    fn = {"gcj02": prcoords.wgs_gcj, "bd09": prcoords.wgs_bd}[crs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(p.lon, p.lat) for p in (fn((lat, lon)) for lon, lat in coords)]


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_drawn_on_chinese_map_lands_where_drawn(crs: str) -> None:
    """A clerk draws the site on AMap/Baidu (coordinates shifted by an independent implementation); imported
    with its CRS and exported as WGS-84 it is the surveyed shape again, to centimetres."""
    drawn = _wgs_to(crs, SITE_WGS84)
    truth = shapely.Polygon(SITE_WGS84)
    assert shapely.hausdorff_distance(shapely.Polygon(drawn), truth) > 1e-3  # hundreds of metres off as drawn
    fences = load_fences(fc(feature("s", poly(drawn), kind="construction_site")), crs=crs, city_bbox=FUTIAN_BBOX)
    exported = dump_fences(fences, crs=Crs.WGS84)
    landed = shapely.geometry.shape(exported["features"][0]["geometry"])
    origin = fences[0].origin
    err_m = shapely.hausdorff_distance(transform_geometry_to_xy(landed, origin), transform_geometry_to_xy(truth, origin))
    assert err_m < 0.05
    # and exported back in the drawing CRS it is the drawing
    again = shapely.geometry.shape(dump_fences(fences, crs=crs)["features"][0]["geometry"])
    assert shapely.hausdorff_distance(again, shapely.Polygon(drawn)) < 1e-7


def test_declared_crs_must_match() -> None:
    doc = dump_fences(load_fences(fc(*GOOD)), crs="gcj02")
    with pytest.raises(FenceImportError, match="declares coordinate_system 'gcj02'"):
        load_fences(doc)
    assert len(load_fences(doc, crs="gcj02")) == 3


BOWTIE = [(114.05, 22.54), (114.06, 22.55), (114.06, 22.54), (114.05, 22.55), (114.05, 22.54)]


@pytest.mark.parametrize(
    "bad, reason",
    [
        (feature("b1", poly(BOWTIE), kind="depot"), "invalid polygon: Self-intersection"),
        (feature("b2", poly([(22.54, 114.05), (22.54, 114.06), (22.55, 114.06), (22.54, 114.05)]), kind="depot"),
         "lat/lon swapped"),
        (feature("b3", {"type": "Polygon", "coordinates": []}, kind="depot"), "empty geometry"),
        (feature("b4", None, kind="depot"), "empty geometry"),
        (feature("b5", poly(SITE_WGS84), kind="spaceport"), "unknown kind 'spaceport'"),
        (feature("b6", poly(SITE_WGS84)), "no kind"),
        (feature("site-1", poly(SITE_WGS84), kind="depot"), "duplicate id 'site-1' (also feature #0)"),
        (feature("b8", {"type": "Point", "coordinates": [114.05, 22.54]}, kind="collection_point", radius_m=0),
         "radius_m must be > 0"),
        (feature("b9", {"type": "Point", "coordinates": [114.05, 22.54]}, kind="collection_point"), "numeric radius_m"),
        (feature("b10", {"type": "LineString", "coordinates": [[114.05, 22.54], [114.06, 22.54]]}, kind="route",
                 half_width_m=-5), "half_width_m must be > 0"),
        (feature("b11", poly(SITE_WGS84), kind="depot", windows=["25:00-26:00"]), "bad time window"),
        (feature("b12", poly(SITE_WGS84), kind="depot", valid_to="next tuesday"), "not an ISO date"),
        (feature("b13", poly([(113.0, 22.54), (113.01, 22.54), (113.01, 22.55), (113.0, 22.54)]), kind="depot"),
         "outside the city area"),
        (feature(None, poly(SITE_WGS84), kind="depot"), "missing id"),
        (feature("b15", {"type": "Point", "coordinates": [114.05, 22.54]}, kind="depot", shape="corridor",
                 radius_m=5), "does not match geometry type Point"),
        (feature("b16", {"type": "MultiPoint", "coordinates": [[114.05, 22.54]]}, kind="depot"), "unsupported geometry"),
    ],
)
def test_each_problem_is_named_and_nothing_imported(bad: dict, reason: str) -> None:
    with pytest.raises(FenceImportError) as err:
        load_fences(fc(*GOOD, bad), city_bbox=FUTIAN_BBOX)
    assert err.value.problems == [(3, bad["properties"]["id"], err.value.problems[0][2])]
    assert reason in err.value.problems[0][2]
    fid = bad["properties"]["id"] or "no id"
    assert f"feature #3 ({fid}): " in str(err.value) and reason in str(err.value)
    assert "nothing imported" in str(err.value)


def test_all_problems_reported_together() -> None:
    bad = [feature("x", poly(BOWTIE), kind="depot"), feature("y", poly(SITE_WGS84), kind="nope")]
    with pytest.raises(FenceImportError) as err:
        load_fences(fc(GOOD[0], *bad))
    assert [(i, fid) for i, fid, _ in err.value.problems] == [(1, "x"), (2, "y")]


def test_swapped_without_city_box_and_not_a_collection() -> None:
    # Xinjiang-like coordinates swapped still parse as lon/lat (lat 80 is valid) but land in the Arctic
    swapped = poly([(40.0, 80.0), (40.0, 80.1), (40.1, 80.1), (40.0, 80.0)])
    with pytest.raises(FenceImportError, match="lat/lon swapped"):
        load_fences(fc(feature("s", swapped, kind="depot")))
    with pytest.raises(FenceImportError, match="not a GeoJSON"):
        load_fences({"type": "Topology"})
    with pytest.raises(FenceImportError, match="not valid JSON"):
        load_fences("{nope")


def test_repair_makes_valid_polygons() -> None:
    fences = load_fences(fc(feature("b", poly(BOWTIE), kind="depot")), repair=True)
    g = fences[0].geometry
    assert g.is_valid and g.geom_type == "MultiPolygon" and len(g.geoms) == 2  # the bow tie's two triangles
    assert g.area == pytest.approx(0.01 * 0.01 / 2)


def test_default_kind_and_shape_inference() -> None:
    f = load_fences(fc(feature("a", poly(SITE_WGS84))), default_kind="disposal_site")[0]
    assert f.kind is FenceKind.DISPOSAL_SITE and f.shape is ShapeKind.POLYGON and f.name == "a"


KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
  <Placemark id="k1"><name>消纳场</name>
    <ExtendedData><Data name="kind"><value>disposal_site</value></Data>
      <Data name="windows"><value>["20:00-05:00"]</value></Data></ExtendedData>
    <Polygon><outerBoundaryIs><LinearRing><coordinates>
      114.05,22.54,0 114.06,22.54,0 114.06,22.55,0 114.05,22.55,0 114.05,22.54,0
    </coordinates></LinearRing></outerBoundaryIs>
    <innerBoundaryIs><LinearRing><coordinates>
      114.054,22.544 114.054,22.546 114.056,22.546 114.056,22.544 114.054,22.544
    </coordinates></LinearRing></innerBoundaryIs></Polygon></Placemark>
  <Placemark><name>收集点</name><ExtendedData><Data name="id"><value>k2</value></Data>
    <Data name="kind"><value>collection_point</value></Data><Data name="radius_m"><value>15</value></Data></ExtendedData>
    <Point><coordinates>114.05,22.54</coordinates></Point></Placemark>
</Document></kml>"""


def test_kml(tmp_path) -> None:
    path = tmp_path / "sites.kml"
    path.write_text(KML, encoding="utf-8")
    k1, k2 = load_fences(path)
    assert (k1.id, k1.name, k1.kind, k1.windows) == ("k1", "消纳场", FenceKind.DISPOSAL_SITE, ((1200, 300),))
    assert len(k1.geometry.interiors) == 1
    assert (k2.id, k2.shape, k2.radius_m) == ("k2", ShapeKind.CIRCLE, 15.0)
    assert load_fences(KML) == [k1, k2]


def test_list_of_features_source() -> None:
    """The simulator hands over its fences as a plain list of Feature dicts."""
    assert load_fences(list(GOOD)) == load_fences(fc(*GOOD))
