//! Geospatial functions over GeoJSON records: `CreatePoint(lat, lon)` (coordinates are
//! `[lon, lat]`), `CreateLineString`, `CreatePolygon`, `ST_DISTANCE` between points (metres,
//! great-circle on a sphere of the Earth's mean radius) and `ST_WITHIN` of a point in a
//! polygon. Other shapes are runtime type errors.

use crate::error::EvalError;
use crate::value::{Record, Value};
use std::sync::Arc;

/// Mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

fn geojson(kind: &str, coordinates: Value) -> Value {
    Record::from_pairs([("type", Value::from(kind)), ("coordinates", coordinates)]).into()
}

fn number(v: &Value) -> Result<f64, EvalError> {
    v.as_f64()
        .ok_or_else(|| EvalError::Type(format!("expected a coordinate, found {}", v.type_name())))
}

/// `CreatePoint(latitude, longitude)`.
pub(crate) fn create_point(a: &[Value]) -> Result<Value, EvalError> {
    if a.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let (lat, lon) = (number(&a[0])?, number(&a[1])?);
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(EvalError::Type(format!(
            "({lat}, {lon}) is not a latitude and longitude"
        )));
    }
    Ok(geojson(
        "Point",
        Value::Array(Arc::new([Value::Float(lon), Value::Float(lat)])),
    ))
}

/// The `[lon, lat]` of a GeoJSON point.
fn point(v: &Value) -> Result<(f64, f64), EvalError> {
    let coords = shape(v, "Point")?;
    match coords {
        [lon, lat] => Ok((number(lon)?, number(lat)?)),
        _ => Err(EvalError::Type("a point needs two coordinates".into())),
    }
}

fn shape<'a>(v: &'a Value, kind: &str) -> Result<&'a [Value], EvalError> {
    if let Value::Record(r) = v
        && r.get("type")
            .is_some_and(|t| matches!(t, Value::String(s) if s.eq_ignore_ascii_case(kind)))
        && let Some(Value::Array(c)) = r.get("coordinates")
    {
        return Ok(c);
    }
    Err(EvalError::Type(format!("expected a GeoJSON {kind}")))
}

/// `CreateLineString(p1, p2, ...)` from points.
pub(crate) fn create_line_string(a: &[Value]) -> Result<Value, EvalError> {
    let coords = a
        .iter()
        .map(|p| shape(p, "Point").map(|c| Value::Array(c.into())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(geojson("LineString", Value::Array(coords.into())))
}

/// `CreatePolygon(p1, p2, ..., p1)`: one ring of points, closed by repeating the first.
pub(crate) fn create_polygon(a: &[Value]) -> Result<Value, EvalError> {
    let ring = a
        .iter()
        .map(|p| shape(p, "Point").map(|c| Value::Array(c.into())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(geojson(
        "Polygon",
        Value::Array(Arc::new([Value::Array(ring.into())])),
    ))
}

/// `ST_DISTANCE(point, point)` in metres.
pub(crate) fn st_distance(a: &[Value]) -> Result<Value, EvalError> {
    if a.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let ((lon1, lat1), (lon2, lat2)) = (point(&a[0])?, point(&a[1])?);
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    Ok(Value::Float(
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin(),
    ))
}

/// `ST_WITHIN(point, polygon)`: 1 when the point is inside the polygon's outer ring
/// (even-odd rule on longitude/latitude), else 0.
pub(crate) fn st_within(a: &[Value]) -> Result<Value, EvalError> {
    if a.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let (x, y) = point(&a[0])?;
    let rings = shape(&a[1], "Polygon")?;
    let Some(Value::Array(ring)) = rings.first() else {
        return Err(EvalError::Type("a polygon needs a ring".into()));
    };
    let pts = ring
        .iter()
        .map(|p| match p {
            Value::Array(c) if c.len() == 2 => Ok((number(&c[0])?, number(&c[1])?)),
            _ => Err(EvalError::Type("a ring holds [lon, lat] pairs".into())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut inside = false;
    for i in 0..pts.len() {
        let (xi, yi) = pts[i];
        let (xj, yj) = pts[(i + pts.len() - 1) % pts.len()];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    Ok(Value::BigInt(i64::from(inside)))
}
